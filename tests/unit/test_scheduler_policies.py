"""The scheduler's pure policies: catch-up plans, overlap decisions, jitter offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scheduler.policies import (
    OverlapAction,
    jitter_offset,
    overlap_action,
    plan_catch_up,
)
from shared.events import Trigger

T0 = datetime(2030, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hourly_before(before: datetime) -> datetime:
    floor = before.replace(minute=0, second=0, microsecond=0)
    return floor if floor < before else floor - HOUR


def hourly_count(first: datetime, last: datetime) -> int:
    return int((last - first) / HOUR) + 1


def plan(latest: datetime, now: datetime, window: int = 86_400, grace: float = 60):
    return plan_catch_up(
        first=T0,
        latest=latest,
        now=now,
        fire_at=T0,
        catchup_window=window,
        grace=grace,
        last_slot_before=hourly_before,
        count_slots=hourly_count,
    )


def test_an_on_time_slot_runs_as_scheduled() -> None:
    result = plan(T0, T0 + timedelta(seconds=2))
    assert (result.run, result.trigger, result.missed) == (T0, Trigger.SCHEDULE, None)


def test_slots_inside_the_window_coalesce_to_the_latest() -> None:
    result = plan(T0 + 5 * HOUR, T0 + 5 * HOUR + timedelta(seconds=1))
    assert (result.run, result.trigger, result.missed) == (T0 + 5 * HOUR, Trigger.CATCHUP, None)


def test_slots_older_than_the_window_become_one_missed_record() -> None:
    result = plan(T0 + 5 * HOUR, T0 + 5 * HOUR + timedelta(minutes=1), window=2 * 3600)
    assert result.run == T0 + 5 * HOUR
    assert result.missed is not None
    assert (result.missed.first, result.missed.last, result.missed.count) == (
        T0,
        T0 + 3 * HOUR,
        4,
    )


def test_all_missed_when_even_the_latest_is_outside_the_window() -> None:
    result = plan(T0 + 2 * HOUR, T0 + 10 * HOUR, window=3600)
    assert result.run is None
    assert result.missed is not None and result.missed.count == 3


def test_overlap_actions() -> None:
    assert overlap_action("SKIP", unfinished=0, buffered_waiting=False) == OverlapAction.FIRE
    assert overlap_action("SKIP", unfinished=1, buffered_waiting=False) == OverlapAction.SKIP
    assert overlap_action("ALLOW", unfinished=3, buffered_waiting=True) == OverlapAction.FIRE
    assert overlap_action("BUFFER_ONE", unfinished=1, buffered_waiting=False) == (
        OverlapAction.BUFFER
    )
    assert overlap_action("BUFFER_ONE", unfinished=2, buffered_waiting=True) == (OverlapAction.SKIP)


def test_jitter_is_deterministic_bounded_and_under_half_the_gap() -> None:
    offsets = [jitter_offset(f"cron_{n}", T0, jitter=300, gap=HOUR) for n in range(2000)]
    assert offsets == [jitter_offset(f"cron_{n}", T0, jitter=300, gap=HOUR) for n in range(2000)]
    assert all(timedelta(0) <= offset <= timedelta(seconds=300) for offset in offsets)
    assert max(offsets) > timedelta(seconds=290) and min(offsets) < timedelta(seconds=10)
    assert jitter_offset("cron_x", T0, jitter=0, gap=HOUR) == timedelta(0)
    short = [
        jitter_offset(f"cron_{n}", T0, jitter=3600, gap=timedelta(minutes=1)) for n in range(500)
    ]
    assert all(offset < timedelta(seconds=30) for offset in short)
