"""The demo's first run: due within a minute, yearly, so its window spans a year of commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.demo import FIRST_RUN_LEAD, first_run_schedule, repos_root
from shared.scheduling import next_runs, previous_run


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 28, 0, 58, 24, 500_000, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 50, tzinfo=UTC),  # the slot falls in the next year
        datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC),
    ],
)
def test_the_first_run_is_the_schedules_next_slot_within_a_minute(now: datetime) -> None:
    expression, slot = first_run_schedule(now)
    assert slot.second == slot.microsecond == 0
    assert now + FIRST_RUN_LEAD <= slot < now + FIRST_RUN_LEAD + timedelta(minutes=1)
    assert next_runs(expression, "UTC", now, 1) == [slot]
    # Its first window opens at the previous slot: a year earlier (or the last 29 February).
    previous = previous_run(expression, "UTC", slot)
    assert previous is not None and slot - previous >= timedelta(days=365)


def test_the_repos_root_is_the_checkout_when_it_holds_the_demo_repository(tmp_path: Path) -> None:
    assert repos_root(tmp_path, tmp_path) == tmp_path
    assert repos_root(tmp_path, tmp_path / ".herald" / "demo-repo") == tmp_path
    elsewhere = tmp_path.parent / "data" / "demo-repo"
    assert repos_root(tmp_path, elsewhere) == elsewhere
