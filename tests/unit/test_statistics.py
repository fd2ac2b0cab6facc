"""Per-job statistics as the API shows them: percentiles, success rate, average duration."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.statistics import percentile, statistics_view
from shared.db.schema import JobStatistics

NEXT = datetime(2025, 1, 2, 9, tzinfo=UTC)


def stats(**fields: Any) -> JobStatistics:
    values: dict[str, Any] = {
        "job_id": "cron_1",
        "total_success": 0,
        "total_failures": 0,
        "total_cancelled": 0,
        "total_skipped": 0,
        "total_missed": 0,
        "total_duration_ms": 0,
        "timed_runs": 0,
        "consecutive_failures": 0,
        "recent_durations": [],
        **fields,
    }
    return JobStatistics(**values)


def test_the_percentile_of_nothing_is_none() -> None:
    assert percentile([], 0.5) is None


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([7], 0.5, 7),
        ([7], 0.95, 7),
        ([1, 2], 0.5, 1),
        ([3, 1, 2], 0.5, 2),
        ([1, 2, 3, 4], 0.5, 2),
        ([15, 20, 35, 40, 50], 0.3, 20),
        ([15, 20, 35, 40, 50], 0.4, 20),
        ([15, 20, 35, 40, 50], 1.0, 50),
        (list(range(1, 101)), 0.95, 95),
        (list(range(1, 21)), 0.95, 19),
        ([5, 1, 4], 0.0, 1),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[int], fraction: float, expected: int) -> None:
    assert percentile(values, fraction) == expected


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 10**7), min_size=1, max_size=120),
    fraction=st.sampled_from([0.5, 0.95]),
)
def test_the_served_percentiles_are_the_nearest_rank(values: list[int], fraction: float) -> None:
    ordered = sorted(values)
    rank = max(1, math.ceil(round(fraction * 100) * len(values) / 100))

    assert percentile(values, fraction) == ordered[rank - 1]


@pytest.mark.parametrize("fraction", [0.29, 0.57])
def test_percentile_is_the_nearest_rank_for_any_whole_percent(fraction: float) -> None:
    values = list(range(1, 101))

    assert percentile(values, fraction) == round(fraction * 100)


def test_a_job_never_run_has_zero_rates_and_no_durations() -> None:
    view = statistics_view(None, next_run=NEXT, recent=[])

    assert view["totalRuns"] == 0
    assert view["successRate"] == "0.00"
    assert view["avgDuration"] is None
    assert view["p50Duration"] is None
    assert view["p95Duration"] is None
    assert view["consecutiveFailures"] == 0
    assert view["lastRun"] is None
    assert view["nextRun"] == NEXT


def test_statistics_with_no_counted_runs_have_a_zero_success_rate() -> None:
    view = statistics_view(stats(total_cancelled=4), next_run=None, recent=[])

    assert view["successRate"] == "0.00"
    assert view["totalCancelled"] == 4
    assert view["totalRuns"] == 0


@pytest.mark.parametrize(
    ("success", "failures", "rate"),
    [(1, 0, "100.00"), (0, 3, "0.00"), (2, 1, "66.67"), (1, 2, "33.33"), (1, 7, "12.50")],
)
def test_the_success_rate_is_a_two_decimal_percentage_string(
    success: int, failures: int, rate: str
) -> None:
    view = statistics_view(
        stats(total_success=success, total_failures=failures), next_run=None, recent=[]
    )

    assert view["successRate"] == rate
    assert view["totalRuns"] == success + failures


def test_the_average_duration_is_whole_milliseconds_over_timed_runs() -> None:
    view = statistics_view(
        stats(total_success=3, total_duration_ms=10_001, timed_runs=3), next_run=None, recent=[]
    )

    assert view["avgDuration"] == 3334
    assert isinstance(view["avgDuration"], int)


def test_no_timed_runs_means_no_average_duration() -> None:
    view = statistics_view(stats(total_success=2), next_run=None, recent=[])

    assert view["avgDuration"] is None


def test_the_view_passes_percentiles_streak_and_recent_executions_through() -> None:
    recent = [{"id": "exe_1"}]
    view = statistics_view(
        stats(total_failures=2, consecutive_failures=2, recent_durations=[400, 100, 300, 200]),
        next_run=NEXT,
        recent=recent,
    )

    assert view["p50Duration"] == 200
    assert view["p95Duration"] == 400
    assert view["consecutiveFailures"] == 2
    assert view["recentExecutions"] == recent
