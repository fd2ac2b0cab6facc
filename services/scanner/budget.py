"""GitHub's hourly budget for each credential, as every scanner replica sees it.

GitHub reports what is left of a credential's budget on every answer (`x-ratelimit-remaining`
and `x-ratelimit-reset`). When it is down to a reserve (the requests other scans may have in
flight), or GitHub answers a primary or secondary rate limit, every replica's requests with
that credential pause until the reset or the `retry-after`: one scan learns it, none of them
spends a request it cannot have. A short pause is waited out in place; a longer one sends the
scan to wait on the delay ladder (`BudgetExhaustedError`), which spends none of the job's
retries.

A secondary limit that says neither `retry-after` nor an exhausted budget's reset is waited
out as GitHub asks: a minute at least, then exponentially longer (`compute_backoff`) for each
one that follows on the credential without an answer in between. The count is this process's:
the pause it leads to is the fleet's, and the longest any replica set wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping

from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError
from shared.metrics import BUDGET_WAIT_SECONDS
from shared.retry import Draws, compute_backoff

# Longest pause a scan waits out holding its message; longer ones take the delay ladder.
WAIT_IN_PLACE = 30.0
SLICE = 1.0
REASON = "GitHub's rate limit for this credential is spent"
# A secondary limit without `retry-after`: GitHub asks for a minute at least, then more.
SECONDARY_WAIT = 60.0
SECONDARY_MAX_WAIT = 30 * 60.0
Report = Callable[[float, str], Awaitable[None]]


def credential_key(token: str) -> str:
    """Name a credential's budget without its secret (anonymous requests share one)."""
    return "github:" + hashlib.sha256(token.encode()).hexdigest()[:16]


class GitHubBudget:
    def __init__(
        self,
        budgets: Budgets,
        *,
        reserve: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: Draws | None = None,
    ) -> None:
        self._budgets = budgets
        self._reserve = reserve
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        # Per credential: secondary limits answered in a row without `retry-after`.
        self._secondary: dict[str, int] = {}

    async def before_request(
        self, key: str, *, check: Callable[[], None], report: Report | None = None
    ) -> None:
        """Wait out a short pause on the credential; raise for a long one (the ladder waits)."""
        paused = await self._budgets.paused_for(key, now=self._clock())
        if paused <= 0:
            return
        if paused > WAIT_IN_PLACE:
            raise BudgetExhaustedError(f"{REASON} until its reset", retry_after=paused)
        if report is not None and paused >= SLICE:
            await report(paused, REASON)
        started = time.monotonic()
        while (left := paused - (time.monotonic() - started)) > 0:
            await self._sleep(min(SLICE, left))
            check()
        BUDGET_WAIT_SECONDS.labels(budget="github").observe(time.monotonic() - started)

    async def observe(self, key: str, headers: Mapping[str, str], *, ok: bool = True) -> None:
        """Pause every replica when the credential is down to its reserve, until the reset."""
        if ok:
            self._secondary.pop(key, None)
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        if remaining <= self._reserve and reset > self._clock():
            await self._budgets.pause(key, reset - self._clock() + 1, now=self._clock())

    async def limited(self, key: str, seconds: float) -> None:
        """GitHub answered a rate limit: pause every replica with this credential."""
        await self._budgets.pause(key, max(seconds, 1.0), now=self._clock())

    def secondary_backoff(self, key: str) -> float:
        """Seconds to wait out a secondary limit that said not how long: 60, then ~120, ~240."""
        streak = self._secondary.get(key, 0) + 1
        self._secondary[key] = streak
        return compute_backoff(
            streak,
            base=SECONDARY_WAIT,
            max_backoff=SECONDARY_MAX_WAIT,
            floor=SECONDARY_WAIT,
            rng=self._rng,
        )
