"""The scheduler's cached schedule look-ups answer exactly as the uncached engine does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.db.schema import CronJob
from shared.dispatch import next_run_after, previous_slot
from shared.scheduling import (
    ScheduleError,
    next_runs,
    preset_next_runs,
    preset_previous_run,
    previous_run,
)

AT = datetime(2032, 3, 10, 12, 0, tzinfo=UTC)


def job(frequency: str, schedule: str, time_config: Any) -> CronJob:
    return CronJob(id="cron_x", frequency=frequency, schedule=schedule, time_config=time_config)


@pytest.mark.parametrize(
    ("frequency", "schedule", "time_config"),
    [
        ("CUSTOM", "0 9 * * *", {"timezone": "UTC"}),
        ("CUSTOM", "0 9 * * *", {"timezone": "America/New_York"}),
        ("CUSTOM", "*/5 * * * *", {}),
        ("DAILY", "", {"hour": 9, "minute": 0, "timezone": "UTC"}),
        ("DAILY", "", {"hour": 10, "minute": 30, "timezone": "Europe/Paris"}),
        ("WEEKLY", "", {"hour": 9, "minute": 0, "dayOfWeek": 2}),
        ("MONTHLY", "", {"hour": 9, "minute": 0, "dayOfMonth": 31}),
    ],
)
def test_cached_answers_match_the_engine(frequency: str, schedule: str, time_config: Any) -> None:
    target = job(frequency, schedule, time_config)
    zone = str(time_config.get("timezone") or "UTC")
    for _ in range(2):  # the second round is answered from the cache
        if frequency == "CUSTOM":
            assert next_run_after(target, AT) == next_runs(schedule, zone, AT, 1)[0]
            assert previous_slot(target, AT) == previous_run(schedule, zone, AT)
        else:
            assert next_run_after(target, AT) == preset_next_runs(frequency, time_config, AT, 1)[0]
            assert previous_slot(target, AT) == preset_previous_run(frequency, time_config, AT)


def test_jobs_sharing_a_cache_entry_only_when_their_schedules_are_equal() -> None:
    nine = job("DAILY", "", {"hour": 9, "minute": 0})
    ten = job("DAILY", "", {"hour": 10, "minute": 0})
    assert next_run_after(nine, AT) != next_run_after(ten, AT)


def test_values_equal_in_python_but_invalid_are_still_rejected() -> None:
    next_run_after(job("DAILY", "", {"hour": 1, "minute": 0}), AT)  # cached as valid
    with pytest.raises(ScheduleError):
        next_run_after(job("DAILY", "", {"hour": True, "minute": 0}), AT)


@pytest.mark.parametrize("time_config", [["not", "an", "object"], {"hour": [9], "minute": 0}])
def test_unhashable_or_malformed_configs_fail_as_before(time_config: Any) -> None:
    with pytest.raises(ScheduleError):
        next_run_after(job("DAILY", "", time_config), AT)
    with pytest.raises(ScheduleError):
        previous_slot(job("DAILY", "", time_config), AT)


def test_an_invalid_expression_raises_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ScheduleError):
            next_run_after(job("CUSTOM", "not a cron", {}), AT)
