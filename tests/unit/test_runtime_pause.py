"""`pause`: a wait that any one of its events cuts short."""

from __future__ import annotations

import asyncio
import time

from shared.runtime import pause


async def test_the_first_event_set_ends_the_pause_at_once() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    assert await pause(30, wake, stop) is True
    assert time.monotonic() - started < 5
    assert not wake.is_set()


async def test_an_event_already_set_returns_without_waiting() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await pause(30, asyncio.Event(), stop) is True


async def test_without_an_event_it_waits_the_whole_time() -> None:
    # The positive control: the same wait, no event set, lasts its seconds.
    started = time.monotonic()
    assert await pause(0.2, asyncio.Event(), asyncio.Event()) is False
    assert time.monotonic() - started >= 0.19
