"""What a network account may still spend, as every publisher replica sees it.

Both networks say on each answer what is left of the account's budget and when it is whole
again (Mastodon `X-RateLimit-*`, its reset an ISO-8601 instant; Bluesky `RateLimit-*`, its
reset in epoch seconds). When an answer says nothing is left, or the network answers 429,
every replica's requests for that account pause until the reset (`shared.budgets`, the pauses
all of herald shares, on Redis in the distributed mode). A request that meets a pause is not
sent: it raises `BudgetExhaustedError` with the seconds left, so the publication waits its
turn without spending an attempt.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError
from shared.retry import wait_from_header

# A network's reset is an instant on its clock; ours may run a little behind.
MARGIN = 1.0
# A 429 that names no reset: Mastodon's and the PDS's shortest windows are 5 minutes, but
# a minute's wait costs little and the next answer says more.
DEFAULT_LIMIT_WAIT = 60.0


def fingerprint(secret: str) -> str:
    """Name an account by its credential without the credential."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RateLimit:
    """What an answer said of the account's budget."""

    limit: int | None
    remaining: int | None
    # Seconds from now until the budget is whole again.
    reset_in: float | None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def mastodon_rate_limit(headers: Mapping[str, str], *, now: float) -> RateLimit:
    """Mastodon's `X-RateLimit-Limit/Remaining/Reset` (the reset an ISO-8601 instant)."""
    reset = headers.get("x-ratelimit-reset")
    reset_in: float | None = None
    if reset:
        try:
            at = datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            reset_in = max(0.0, at.timestamp() - now)
    return RateLimit(
        _int(headers.get("x-ratelimit-limit")),
        _int(headers.get("x-ratelimit-remaining")),
        reset_in,
    )


def bluesky_rate_limit(headers: Mapping[str, str], *, now: float) -> RateLimit:
    """The PDS's `RateLimit-Limit/Remaining/Reset` (the reset in epoch seconds)."""
    reset = headers.get("ratelimit-reset")
    reset_in: float | None = None
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            reset_in = max(0.0, seconds - now)
    return RateLimit(
        _int(headers.get("ratelimit-limit")),
        _int(headers.get("ratelimit-remaining")),
        reset_in,
    )


class AccountBudget:
    """Pauses per network account, fed by the network's rate-limit headers."""

    def __init__(self, budgets: Budgets, *, clock: Callable[[], float] = time.time) -> None:
        self._budgets = budgets
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    async def before_request(self, key: str, *, network: str) -> None:
        """Raise while the account is paused: the request would only be refused."""
        paused = await self._budgets.paused_for(key, now=self._clock())
        if paused > 0:
            raise BudgetExhaustedError(
                f"{network}'s rate limit for this account is spent; it is whole again in "
                f"{math.ceil(paused)} s",
                retry_after=paused,
            )

    async def observe(self, key: str, seen: RateLimit) -> None:
        """Pause the account when an answer says nothing is left, until the reset."""
        if seen.remaining is not None and seen.remaining <= 0 and seen.reset_in:
            await self._budgets.pause(key, seen.reset_in + MARGIN, now=self._clock())

    async def limited(
        self, key: str, seen: RateLimit, headers: Mapping[str, str], *, network: str
    ) -> BudgetExhaustedError:
        """A 429: pause the account for every replica; return the error to raise."""
        wait = wait_from_header(headers, now=self._clock)
        if wait is None:
            wait = seen.reset_in if seen.reset_in is not None else DEFAULT_LIMIT_WAIT
        wait = max(wait, 1.0)
        await self._budgets.pause(key, wait + MARGIN, now=self._clock())
        return BudgetExhaustedError(
            f"{network} answered 429: the account's rate limit is spent for {math.ceil(wait)} s",
            retry_after=wait,
        )
