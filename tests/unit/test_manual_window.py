"""A manual first run's activity window: one schedule interval back, not the sliver since the
last slot; a scheduled first run's window is unchanged (its previous slot)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.db.schema import CronJob
from shared.dispatch import interval_before, previous_slot
from shared.scheduling import preset_expression


def preset(frequency: str, **time_config: Any) -> CronJob:
    return CronJob(
        frequency=frequency,
        time_config=time_config,
        schedule=preset_expression(frequency, time_config),
    )


def custom(schedule: str, zone: str = "UTC") -> CronJob:
    return CronJob(frequency="CUSTOM", time_config={"timezone": zone}, schedule=schedule)


@pytest.mark.parametrize(
    ("job", "at", "interval"),
    [
        # Five minutes after a daily slot: a day back, not five minutes.
        (preset("DAILY", hour=9, minute=0), datetime(2026, 12, 4, 9, 5, tzinfo=UTC), 24),
        (preset("DAILY", hour=9, minute=0), datetime(2026, 12, 4, 8, 55, tzinfo=UTC), 24),
        # A weekly job run on a Friday: the last seven days, not the four since Monday.
        (
            preset("WEEKLY", hour=9, minute=0, dayOfWeek=1, timezone="Europe/Berlin"),
            datetime(2026, 12, 4, 16, 0, tzinfo=UTC),
            24 * 7,
        ),
        # The Berlin day that the spring change shortens is 23 hours long.
        (
            preset("DAILY", hour=9, minute=0, timezone="Europe/Berlin"),
            datetime(2026, 3, 29, 5, 0, tzinfo=UTC),
            23,
        ),
        # Weekdays only: on Monday morning, the gap back to Friday.
        (custom("30 8 * * 1-5"), datetime(2026, 12, 7, 8, 0, tzinfo=UTC), 72),
        (custom("*/15 * * * *"), datetime(2026, 12, 4, 10, 7, tzinfo=UTC), 0.25),
    ],
)
def test_a_manual_first_run_looks_one_schedule_interval_back(
    job: CronJob, at: datetime, interval: float
) -> None:
    assert interval_before(job, at) == at - timedelta(hours=interval)


def test_on_a_slot_the_interval_reaches_the_previous_slot_as_a_scheduled_run_does() -> None:
    job = preset("WEEKLY", hour=9, minute=0, dayOfWeek=1)
    slot = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    assert interval_before(job, slot) == previous_slot(job, slot) == slot - timedelta(days=7)
