"""Process plumbing every service shares: stop signals, waiting for dependencies."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable

import structlog

from shared.retry import compute_backoff

log = structlog.get_logger(__name__)


def freeze_startup_objects() -> None:
    """Keep what start-up built (modules, routes, schemas) out of the garbage collector's walks.

    They live as long as the process; left in the collector's care, each full collection
    walks all ~150,000 of them, a pause of 60-100 ms that all work in flight waits out (it
    showed as the API's p99 latency, and as the scheduler's late fires: 2,000 runs due at
    an instant went out up to 90 ms later when a full collection fell among them).
    """
    gc.collect()
    gc.freeze()


def install_stop_signals() -> asyncio.Event:
    """Return an event set on SIGTERM or SIGINT, for a graceful shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start_when_available(
    start: Callable[[], Awaitable[None]], *, what: str, stop: asyncio.Event
) -> bool:
    """Call `start` until it succeeds or `stop` is set; return whether it succeeded.

    A dependency that is down at start-up is not fatal: the service reports not-ready on
    `/readyz` meanwhile and carries on when the dependency answers.
    """
    failures = 0
    while not stop.is_set():
        try:
            await start()
            return True
        except Exception as exc:
            failures += 1
            delay = compute_backoff(failures, base=0.5, max_backoff=10.0, floor=0.5)
            log.warning(
                "dependency unavailable; retrying",
                dependency=what,
                error=str(exc),
                retry_in=round(delay, 2),
            )
        await pause(delay, stop)
    return False


async def pause(seconds: float, *events: asyncio.Event) -> bool:
    """Wait `seconds`, or less if one of `events` is set first; return whether one was."""
    if any(event.is_set() for event in events):
        return True
    if not events:
        await asyncio.sleep(max(0.0, seconds))
        return False
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(
            waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
    for waiter in done:
        # An event bound to another event loop fails its waiter at once: that is a bug to
        # raise, not an event that was set (it would turn every pause into a busy loop).
        waiter.result()
    return bool(done)
