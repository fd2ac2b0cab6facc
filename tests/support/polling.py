"""Waiting for what real processes do, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


def poll(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout: float = 90,
    interval: float = 0.25,
) -> Any:
    """Call `fetch` until `done` holds for its value; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not done in {timeout}s; last: {value}")
        time.sleep(interval)
        value = fetch()
    return value


async def poll_async(
    fetch: Callable[[], Any],
    done: Callable[[Any], Any] = bool,
    timeout: float = 30,
    interval: float = 0.05,
) -> Any:
    """`poll` inside an event loop: `fetch` may be a plain or an async function, and the loop
    runs on while it waits. By default waits for a truthy value."""
    deadline = time.monotonic() + timeout
    value = await _fetched(fetch)
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not done in {timeout}s; last: {value}")
        await asyncio.sleep(interval)
        value = await _fetched(fetch)
    return value


async def _fetched(fetch: Callable[[], Any]) -> Any:
    value = fetch()
    return await value if inspect.isawaitable(value) else value
