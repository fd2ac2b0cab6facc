"""GitHub's hourly budget for each credential, as every scanner replica sees it.

GitHub reports what is left of a credential's budget on every answer (`x-ratelimit-remaining`
and `x-ratelimit-reset`). When it is down to a reserve (the requests other scans may have in
flight), or GitHub answers a primary or secondary rate limit, every replica's requests with
that credential pause until the reset or the `retry-after`: one scan learns it, none of them
spends a request it cannot have. A short pause is waited out in place; a longer one sends the
scan to wait on the delay ladder (`BudgetExhaustedError`), which spends none of the job's
retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping

from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError
from shared.metrics import BUDGET_WAIT_SECONDS

# Longest pause a scan waits out holding its message; longer ones take the delay ladder.
WAIT_IN_PLACE = 30.0
SLICE = 1.0
REASON = "GitHub's rate limit for this credential is spent"
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
    ) -> None:
        self._budgets = budgets
        self._reserve = reserve
        self._sleep = sleep
        self._clock = clock

    async def before_request(
        self, key: str, *, check: Callable[[], None], report: Report | None = None
    ) -> None:
        """Wait out a short pause on the credential; raise for a long one (the ladder waits)."""
        paused = await self._budgets.paused_for(key)
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

    async def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Pause every replica when the credential is down to its reserve, until the reset."""
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        if remaining <= self._reserve and reset > self._clock():
            await self._budgets.pause(key, reset - self._clock() + 1)

    async def limited(self, key: str, seconds: float) -> None:
        """GitHub answered a rate limit: pause every replica with this credential."""
        await self._budgets.pause(key, max(seconds, 1.0))
