"""Supervised background loops: a crash is logged with its traceback, counted, restarted, and
the process is not ready while the loop waits to come back."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time

import pytest
from structlog.testing import capture_logs

from shared import metrics
from shared.supervision import Supervisor, log_failed_pass
from tests.support.polling import poll_async


def crashes(service: str, loop: str) -> float:
    return metrics.BACKGROUND_LOOP_CRASHES.labels(service=service, loop=loop)._value.get()


async def test_a_crashed_loop_is_logged_counted_reported_and_restarted() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor("unit", stop, first_restart=0.3)
    runs: list[float] = []

    async def gauge() -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("the gauge's query named a column that is gone")
        await stop.wait()

    before = crashes("unit", "gauge")
    with capture_logs() as logs:
        supervisor.start("gauge", gauge)
        await poll_async(lambda: supervisor.down, bool, timeout=5)
        assert not await supervisor.ready()
        up = metrics.BACKGROUND_LOOP_UP.labels(service="unit", loop="gauge")._value.get()
        assert up == 0
        await poll_async(lambda: len(runs), lambda count: count == 2, timeout=5)
        assert await supervisor.ready()
        stop.set()
        await supervisor.wait()

    assert crashes("unit", "gauge") == before + 1
    [crash] = [entry for entry in logs if entry["event"] == "background loop crashed"]
    assert crash["loop"] == "gauge" and crash["log_level"] == "error"
    assert crash["exc_info"] is True  # rendered with the traceback by the configured renderer
    assert runs[1] - runs[0] >= 0.25  # restarted after the backoff, not at once


async def test_a_loop_that_returns_before_the_stop_is_a_crash_too() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor("unit", stop, first_restart=0.05)
    runs = 0

    async def returns_early() -> None:
        nonlocal runs
        runs += 1
        if runs > 2:
            await stop.wait()

    before = crashes("unit", "early")
    with capture_logs() as logs:
        supervisor.start("early", returns_early)
        await poll_async(lambda: runs, lambda count: count == 3, timeout=5)
        stop.set()
        await supervisor.wait()
    assert crashes("unit", "early") == before + 2
    ended = [entry for entry in logs if entry["event"].startswith("background loop ended")]
    assert len(ended) == 2


async def test_restarts_back_off_while_a_loop_keeps_crashing() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor("unit", stop, first_restart=0.1, longest_restart=0.4)
    starts: list[float] = []

    async def always_fails() -> None:
        starts.append(time.monotonic())
        raise ValueError("still broken")

    with capture_logs():
        supervisor.start("broken", always_fails)
        await poll_async(lambda: len(starts), lambda count: count >= 5, timeout=10)
        stop.set()
        await supervisor.wait()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[1] > gaps[0] * 1.4  # doubling, with ±10 % jitter
    assert max(gaps) < 0.4 * 1.1 + 0.2  # capped at the longest restart


async def test_a_stop_during_the_restart_pause_ends_the_loop_without_restarting_it() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor("unit", stop, first_restart=30)
    runs = 0

    async def fails_once() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("once")

    with capture_logs():
        supervisor.start("once", fails_once)
        await poll_async(lambda: supervisor.down, bool, timeout=5)
        stop.set()
        await asyncio.wait_for(supervisor.wait(), timeout=5)
    assert runs == 1


async def test_a_stopping_process_lets_a_pass_in_hand_end_and_cancels_a_loop_past_the_grace() -> (
    None
):
    stop = asyncio.Event()
    supervisor = Supervisor("unit", stop)
    in_pass, finished = asyncio.Event(), []

    async def sweeper() -> None:
        while not stop.is_set():
            in_pass.set()
            await asyncio.sleep(0.2)  # a transaction under way
            finished.append("pass")

    async def stubborn() -> None:
        await asyncio.Event().wait()  # never looks at `stop`

    supervisor.start("sweeper", sweeper)
    supervisor.start("stubborn", stubborn)
    await in_pass.wait()
    stop.set()
    started = time.monotonic()
    await supervisor.cancel(grace=2.0)
    assert finished == ["pass"]  # ended on its own, not cancelled half-way
    assert time.monotonic() - started >= 2.0  # the stubborn one was waited for, then cancelled


def test_two_loops_of_one_name_are_refused() -> None:
    supervisor = Supervisor("unit", asyncio.Event())
    supervisor._tasks["dup"] = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.start("dup", asyncio.sleep)  # type: ignore[arg-type]


def test_an_outage_is_one_line_and_a_bug_keeps_its_traceback() -> None:
    with capture_logs() as logs:
        log = __import__("structlog").get_logger()
        log_failed_pass(log, "pass failed", ConnectionRefusedError(111, "Connection refused"))
        log_failed_pass(log, "pass failed", KeyError("lastRunAt"))
    outage, bug = logs
    assert "exc_info" not in outage and "Connection refused" in outage["error"]
    assert isinstance(bug["exc_info"], KeyError)


PROGRAM = """
import asyncio
import itertools
from shared.logging import configure_logging
from shared.supervision import Supervisor

def read_the_gauge():
    raise RuntimeError("column j.next_run does not exist")

async def main():
    stop = asyncio.Event()
    supervisor = Supervisor("api", stop, first_restart=0.05)

    async def gauge():
        read_the_gauge()

    supervisor.start("overdue gauge", gauge)
    await asyncio.sleep(0.02)
    stop.set()
    await supervisor.wait()

configure_logging(service="api", fmt="json")
asyncio.run(main())
"""


def test_the_crash_is_written_with_its_traceback_in_the_production_format() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [crash] = [record for record in records if record["event"] == "background loop crashed"]
    assert crash["loop"] == "overdue gauge" and crash["service"] == "api"
    frames = crash["exception"][0]["frames"]
    assert frames[-1]["name"] == "read_the_gauge"
    assert "column j.next_run does not exist" in crash["exception"][0]["exc_value"]
