"""Rate budgets and pauses a fleet shares: `limits` moving windows on Redis, or in this process.

With `HERALD_REDIS_URL` (the distributed mode) every replica spends from the same budget,
through Redis's atomic scripts, and honours the same pauses (a provider's 429 stops every
replica's calls until its `retry-after`); without it (the standalone mode) budgets and pauses
live in this process. Redis holds these and nothing else: losing it loses no record, and
budgets start again from nothing. When Redis stops answering, this process keeps its own for
`RETRY_SHARED` seconds at a time, logged and counted, so a limit still holds per replica
instead of failing the request that asked. Pauses are instants in wall-clock time: replicas'
clocks are assumed to agree (NTP), as every deadline in herald does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
import structlog
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.util import WindowStats

from shared.metrics import BUDGET_STORE_ERRORS

log = structlog.get_logger(__name__)

RETRY_SHARED = 5.0
# Moves a pause's end later, never earlier: whichever replica saw the longest wait wins.
_EXTEND_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class Budgets:
    """Spend from named budgets (`hit`) and read what is left (`stats`)."""

    def __init__(
        self,
        redis_url: str = "",
        *,
        prefix: str = "herald",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared_storage: Storage | None = None
        self._shared: MovingWindowRateLimiter | None = None
        # One pool of Redis connections for the windows (`limits`) and the pauses, closed
        # with this object.
        self._pool: Any = redis.ConnectionPool.from_url(redis_url) if redis_url else None
        self._redis: Any = redis.Redis(connection_pool=self._pool) if redis_url else None
        if redis_url:
            self._shared_storage = RedisStorage(
                _async_uri(redis_url),
                implementation="redispy",
                key_prefix=prefix,
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # documented, typed narrowly
            )
            self._shared = MovingWindowRateLimiter(self._shared_storage)
        self._clock = clock
        self._local_until = 0.0
        self._prefix = prefix
        self._local_pauses: dict[str, float] = {}

    @property
    def shared(self) -> bool:
        """Whether budgets are shared by the fleet (a Redis is configured)."""
        return self._shared is not None

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._shared is not None and self._clock() >= self._local_until:
            return self._shared
        return self._local

    def _fall_back(self, exc: StorageError) -> None:
        self._local_until = self._clock() + RETRY_SHARED
        BUDGET_STORE_ERRORS.inc()
        log.warning(
            "shared budgets unreachable; this process keeps its own for a while",
            error_type=type(exc.storage_error).__name__,
            retry_in=RETRY_SHARED,
        )

    async def hit(self, item: RateLimitItem, *keys: str, cost: int = 1) -> bool:
        """Spend `cost` from the budget `item` keyed by `keys`; False when it would overspend."""
        limiter = self._limiter()
        try:
            return await limiter.hit(item, *keys, cost=cost)
        except StorageError as exc:
            self._fall_back(exc)
            return await self._local.hit(item, *keys, cost=cost)

    async def test(self, item: RateLimitItem, *keys: str, cost: int = 1) -> bool:
        """Whether `cost` could be spent now, spending nothing."""
        limiter = self._limiter()
        try:
            return await limiter.test(item, *keys, cost=cost)
        except StorageError as exc:
            self._fall_back(exc)
            return await self._local.test(item, *keys, cost=cost)

    async def stats(self, item: RateLimitItem, *keys: str) -> WindowStats:
        """What is left of the budget and when it is whole again (epoch seconds)."""
        limiter = self._limiter()
        try:
            return await limiter.get_window_stats(item, *keys)
        except StorageError as exc:
            self._fall_back(exc)
            return await self._local.get_window_stats(item, *keys)

    async def pause(self, key: str, seconds: float, *, now: float | None = None) -> None:
        """Stop every call waiting on `key` for `seconds` from now, in every replica."""
        now = time.time() if now is None else now
        until = now + seconds
        self._local_pauses[key] = max(until, self._local_pauses.get(key, 0.0))
        if self._redis is None or self._clock() < self._local_until:
            return
        try:
            await self._redis.eval(
                _EXTEND_PAUSE, 1, self._pause_key(key), int(until * 1000), int(seconds * 1000) + 1
            )
        except redis.RedisError as exc:
            self._fall_back(StorageError(exc))

    async def paused_for(self, key: str, *, now: float | None = None) -> float:
        """Seconds left of the pause on `key`; 0 when it is not paused."""
        now = time.time() if now is None else now
        until = self._local_pauses.get(key, 0.0)
        if self._redis is not None and self._clock() >= self._local_until:
            try:
                shared = await self._redis.get(self._pause_key(key))
            except redis.RedisError as exc:
                self._fall_back(StorageError(exc))
            else:
                until = max(until, int(shared) / 1000 if shared else 0.0)
        return max(0.0, until - now)

    def _pause_key(self, key: str) -> str:
        return f"{self._prefix}:pause:{key}"

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            await self._pool.aclose()

    async def ping(self) -> bool:
        """Whether the shared store answers (True when there is none to ask)."""
        if self._shared_storage is None:
            return True
        try:
            return bool(await self._shared_storage.check())
        except Exception:
            return False


def _async_uri(url: str) -> str:
    """`redis://host` as `limits` names its async Redis storage (`async+redis://host`)."""
    return url if url.startswith("async+") else f"async+{url}"
