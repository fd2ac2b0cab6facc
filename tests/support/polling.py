"""Waiting for what real processes do, with a deadline instead of a fixed sleep."""

from __future__ import annotations

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
