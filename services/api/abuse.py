"""Failed authentications per client address: slowed past half the budget, refused past it.

Failures are counted in the fleet's shared budget (`shared.budgets`), so guesses spread over
replicas add up. A refused address is remembered here until its window resets, and refused
before its credential is even looked at; a replica that has not yet refused it learns at the
address's next failure, so with R replicas an address gets at most the budget plus R - 1
tries a window. Successful requests cost nothing: no budget is read on the way in.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from limits import RateLimitItemPerMinute
from starlette.requests import HTTPConnection

from shared.budgets import Budgets
from shared.metrics import API_REFUSALS

# Past half the budget each further failure waits this much longer, up to the cap.
SLOW_STEP = 0.25
SLOW_CAP = 2.0
# Addresses remembered as refused; the oldest are forgotten first (their window has passed).
REMEMBERED = 10_000


def client_address(connection: HTTPConnection) -> str:
    """The client's address (behind a trusted proxy, the one its X-Forwarded-For names)."""
    return connection.client.host if connection.client else "unknown"


class FailedAuthentication:
    def __init__(
        self,
        budgets: Budgets,
        per_minute: int,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._budgets = budgets
        self._per_minute = per_minute
        self._item = RateLimitItemPerMinute(max(per_minute, 1))
        self._sleep = sleep
        self._clock = clock
        self._refused: OrderedDict[str, float] = OrderedDict()

    def refused_for(self, address: str) -> int | None:
        """Seconds an address must still wait, when this process refuses it; else None."""
        until = self._refused.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._refused[address]
            return None
        API_REFUSALS.labels(limit="auth_failures", outcome="refused").inc()
        return max(1, math.ceil(left))

    async def failed(self, address: str) -> int | None:
        """Count a failure; return the seconds to wait when the address is now refused."""
        if self._per_minute == 0:
            return None
        if not await self._budgets.hit(self._item, "auth-failures", address):
            stats = await self._budgets.stats(self._item, "auth-failures", address)
            self._refused[address] = stats.reset_time
            self._refused.move_to_end(address)
            while len(self._refused) > REMEMBERED:
                self._refused.popitem(last=False)
            API_REFUSALS.labels(limit="auth_failures", outcome="refused").inc()
            return max(1, math.ceil(stats.reset_time - self._clock()))
        stats = await self._budgets.stats(self._item, "auth-failures", address)
        used = self._per_minute - stats.remaining
        beyond_half = used - self._per_minute / 2
        if beyond_half > 0:
            API_REFUSALS.labels(limit="auth_failures", outcome="slowed").inc()
            await self._sleep(min(SLOW_CAP, SLOW_STEP * beyond_half))
        return None
