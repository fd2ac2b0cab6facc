"""What the generators may spend on their model, shared by every generator replica.

Before a call: wait out a pause on the model (a 429 any replica saw), then take one request
from the requests-per-minute budget and the call's tokens from the tokens-per-minute budget
(`HERALD_AI_REQUESTS_PER_MINUTE`, `HERALD_AI_TOKENS_PER_MINUTE`), waiting while either is
spent. After an answer, the provider's own headers slow every replica before a 429 (nothing
left: pause until one request or token is back); a 429 or 529 pauses every replica until its
`retry-after`. Waiting is no failure: it spends none of the job's retries, and its length goes
to `herald_budget_wait_seconds` and, past a second, to the execution's timeline.

In each process one caller at a time polls the shared budget (the others queue behind it, in
order), so a spent budget costs Redis one look per freed unit, not one per waiting call.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from limits import RateLimitItem, RateLimitItemPerMinute

from shared.budgets import Budgets
from shared.metrics import BUDGET_WAIT_SECONDS

# Sleep in slices no longer than this, so a cancelled execution stops waiting soon.
SLICE = 1.0
# A unit frees at the window's edge on our clock; the provider's edge is a little later.
MARGIN = 0.25
Report = Callable[[float, str], Awaitable[None]]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ModelBudget:
    def __init__(
        self,
        budgets: Budgets,
        *,
        provider: str,
        model: str,
        requests_per_minute: int = 0,
        tokens_per_minute: int = 0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = f"ai:{provider}:{model}"
        self._budgets = budgets
        self._requests: RateLimitItem | None = (
            RateLimitItemPerMinute(requests_per_minute) if requests_per_minute else None
        )
        self._tokens: RateLimitItem | None = (
            RateLimitItemPerMinute(tokens_per_minute) if tokens_per_minute else None
        )
        self._tokens_per_minute = tokens_per_minute
        self._sleep = sleep
        self._clock = clock
        self._gate = asyncio.Lock()

    async def acquire(
        self,
        tokens: int,
        *,
        check: Callable[[], None],
        report: Report | None = None,
        spend: bool = True,
    ) -> float:
        """Wait until a call of about `tokens` tokens may go; return the seconds waited.

        `check` raises when the caller's execution was cancelled meanwhile: no call is made.
        `spend=False` only waits out a pause: a call the provider refused with a 429 already
        holds the budget it took (the provider counts refused calls as nothing).
        """
        waited = 0.0
        cost = min(max(tokens, 1), self._tokens_per_minute or tokens or 1)
        async with self._gate:
            while True:
                check()
                paused = await self._budgets.paused_for(self.key)
                if paused > 0:
                    waited += await self._wait(paused, "ai_pause", check, report)
                    continue
                if not spend:
                    return waited
                if self._tokens is not None and not await self._budgets.test(
                    self._tokens, self.key, "tokens", cost=cost
                ):
                    waited += await self._wait_for(self._tokens, "tokens", check, report)
                    continue
                if self._requests is not None and not await self._budgets.hit(
                    self._requests, self.key, "requests"
                ):
                    waited += await self._wait_for(self._requests, "requests", check, report)
                    continue
                if self._tokens is not None and not await self._budgets.hit(
                    self._tokens, self.key, "tokens", cost=cost
                ):
                    # Another replica took the tokens between the look and the take.
                    waited += await self._wait_for(self._tokens, "tokens", check, report)
                    continue
                return waited

    async def observe(self, headers: Mapping[str, str]) -> None:
        """Slow every replica when the provider says nothing is left, before it says 429."""
        for kind in ("requests", "tokens"):
            remaining, limit, reset = _limits(headers, kind, now=self._clock())
            if remaining == 0 and reset is not None:
                # Until one unit is back at the provider's steady rate, at most its full reset.
                one_back = 60.0 / limit if limit else reset
                await self._budgets.pause(self.key, min(reset, one_back) + MARGIN)

    async def throttled(self, retry_after: float | None, headers: Mapping[str, str]) -> None:
        """A 429 or 529: pause every replica's calls until the provider's word, or a second."""
        seconds = retry_after
        if seconds is None:
            resets = [
                _limits(headers, kind, now=self._clock())[2] for kind in ("requests", "tokens")
            ]
            known = [reset for reset in resets if reset is not None]
            seconds = min(known) if known else 1.0
        await self._budgets.pause(self.key, max(seconds, 0.1) + MARGIN)

    async def _wait_for(
        self, item: RateLimitItem, kind: str, check: Callable[[], None], report: Report | None
    ) -> float:
        stats = await self._budgets.stats(item, self.key, kind)
        return await self._wait(
            max(stats.reset_time - self._clock(), 0.05) + MARGIN, f"ai_{kind}", check, report
        )

    async def _wait(
        self, seconds: float, budget: str, check: Callable[[], None], report: Report | None
    ) -> float:
        if report is not None and seconds >= SLICE:
            await report(seconds, _REASONS[budget])
        started = time.monotonic()
        left = seconds
        while left > 0:
            await self._sleep(min(SLICE, left))
            check()
            left = seconds - (time.monotonic() - started)
        waited = time.monotonic() - started
        BUDGET_WAIT_SECONDS.labels(budget=budget).observe(waited)
        return waited


_REASONS = {
    "ai_pause": "the model's provider asked every replica to wait",
    "ai_requests": "the model's requests-per-minute budget is spent",
    "ai_tokens": "the model's tokens-per-minute budget is spent",
}


def _limits(
    headers: Mapping[str, str], kind: str, *, now: float
) -> tuple[int | None, int | None, float | None]:
    """(remaining, limit, seconds to reset) from OpenAI's or Anthropic's rate-limit headers."""
    for prefix in (f"x-ratelimit-{{}}-{kind}", f"anthropic-ratelimit-{kind}-{{}}"):
        remaining = _int(headers.get(prefix.format("remaining")))
        if remaining is None:
            continue
        limit = _int(headers.get(prefix.format("limit")))
        return remaining, limit, _reset(headers.get(prefix.format("reset")), now=now)
    return None, None, None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reset(value: str | None, *, now: float) -> float | None:
    """OpenAI's durations (`1s`, `6m0s`, `12ms`) or Anthropic's RFC 3339 instants, as seconds."""
    if not value:
        return None
    parts = _DURATION.findall(value)
    if parts and "".join(number + unit for number, unit in parts) == value:
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now)
    except ValueError:
        return None
