"""DST rules pinned with concrete instants on both transition days in many zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.scheduling import next_runs, previous_run


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def runs(expression: str, zone: str, after: str, count: int) -> list[str]:
    return [f"{r:%Y-%m-%dT%H:%MZ}" for r in next_runs(expression, zone, at(after), count)]


def local(expression: str, zone: str, after: str, count: int) -> list[str]:
    tz = ZoneInfo(zone)
    return [
        r.astimezone(tz).strftime("%m-%d %H:%M %Z")
        for r in next_runs(expression, zone, at(after), count)
    ]


# Fixed-time jobs whose wall time falls in a spring-forward gap run once at the gap's end.
@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        (
            "30 2 * * *",
            "America/New_York",
            "2025-03-08T12:00Z",
            ["2025-03-09T07:00Z", "2025-03-10T06:30Z"],
        ),
        (
            "0,30 2 * * *",
            "America/New_York",
            "2025-03-08T12:00Z",
            ["2025-03-09T07:00Z", "2025-03-10T06:00Z"],
        ),
        (
            "0,30 2,3 * * *",
            "America/New_York",
            "2025-03-08T12:00Z",
            ["2025-03-09T07:00Z", "2025-03-09T07:30Z"],
        ),
        (
            "30 1 * * *",
            "Europe/London",
            "2025-03-29T12:00Z",
            ["2025-03-30T01:00Z", "2025-03-31T00:30Z"],
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2025-03-29T12:00Z",
            ["2025-03-30T01:00Z", "2025-03-31T00:30Z"],
        ),
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2025-10-04T00:00Z",
            ["2025-10-04T16:00Z", "2025-10-05T15:30Z"],
        ),
        (
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2025-10-04T00:00Z",
            ["2025-10-04T15:30Z", "2025-10-05T15:15Z"],
        ),
        (
            "30 2 * * *",
            "Australia/Lord_Howe",
            "2025-10-04T00:00Z",
            ["2025-10-04T15:30Z", "2025-10-05T15:30Z"],
        ),
        (
            "0 0 * * *",
            "America/Havana",
            "2025-03-08T12:00Z",
            ["2025-03-09T05:00Z", "2025-03-10T04:00Z"],
        ),
        (
            "30 0 * * *",
            "America/Santiago",
            "2025-09-06T12:00Z",
            ["2025-09-07T04:00Z", "2025-09-08T03:30Z"],
        ),
        (
            "0 0 * * *",
            "America/Santiago",
            "2025-09-06T12:00Z",
            ["2025-09-07T04:00Z", "2025-09-08T03:00Z"],
        ),
        (
            "30 1 * * *",
            "Europe/Dublin",
            "2025-03-29T12:00Z",
            ["2025-03-30T01:00Z", "2025-03-31T00:30Z"],
        ),
        (
            "30 2 * * *",
            "Africa/Casablanca",
            "2025-04-05T12:00Z",
            ["2025-04-06T02:00Z", "2025-04-07T01:30Z"],
        ),
        (
            "0 3 * * *",
            "Pacific/Chatham",
            "2025-09-27T00:00Z",
            ["2025-09-27T14:00Z", "2025-09-28T13:15Z"],
        ),
    ],
)
def test_fixed_job_in_gap_runs_at_gap_end(
    expression: str, zone: str, after: str, expected: list[str]
) -> None:
    assert runs(expression, zone, after, len(expected)) == expected


def test_gap_run_needs_to_be_after_after() -> None:
    assert runs("30 2 * * *", "America/New_York", "2025-03-09T07:00Z", 1) == ["2025-03-10T06:30Z"]
    assert runs("30 2 * * *", "America/New_York", "2025-03-09T06:59Z", 1) == ["2025-03-09T07:00Z"]


def test_new_york_readable_gap_and_fold() -> None:
    assert local("30 2 * * *", "America/New_York", "2025-03-08T12:00Z", 2) == [
        "03-09 03:00 EDT",
        "03-10 02:30 EDT",
    ]
    assert local("30 1 * * *", "America/New_York", "2025-11-01T12:00Z", 2) == [
        "11-02 01:30 EDT",
        "11-03 01:30 EST",
    ]


# Fixed-time jobs in a repeated hour run once, at the first occurrence.
@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        (
            "30 1 * * *",
            "America/New_York",
            "2025-11-01T12:00Z",
            ["2025-11-02T05:30Z", "2025-11-03T06:30Z"],
        ),
        (
            "30 1 * * *",
            "Europe/London",
            "2025-10-25T12:00Z",
            ["2025-10-26T00:30Z", "2025-10-27T01:30Z"],
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2025-10-25T12:00Z",
            ["2025-10-26T00:30Z", "2025-10-27T01:30Z"],
        ),
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2025-04-05T00:00Z",
            ["2025-04-05T15:30Z", "2025-04-06T16:30Z"],
        ),
        (
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2025-04-05T00:00Z",
            ["2025-04-05T14:45Z", "2025-04-06T15:15Z"],
        ),
        (
            "0 0 * * *",
            "America/Havana",
            "2025-11-01T12:00Z",
            ["2025-11-02T04:00Z", "2025-11-03T05:00Z"],
        ),
        (
            "30 23 * * *",
            "America/Santiago",
            "2025-04-05T12:00Z",
            ["2025-04-06T02:30Z", "2025-04-07T03:30Z"],
        ),
        (
            "30 1 * * *",
            "Europe/Dublin",
            "2025-10-25T12:00Z",
            ["2025-10-26T00:30Z", "2025-10-27T01:30Z"],
        ),
        (
            "30 2 * * *",
            "Africa/Casablanca",
            "2025-02-22T12:00Z",
            ["2025-02-23T01:30Z", "2025-02-24T02:30Z"],
        ),
        (
            "0 3 * * *",
            "Pacific/Chatham",
            "2025-04-05T00:00Z",
            ["2025-04-05T13:15Z", "2025-04-06T14:15Z"],
        ),
    ],
)
def test_fixed_job_in_fold_runs_once_at_first_occurrence(
    expression: str, zone: str, after: str, expected: list[str]
) -> None:
    assert runs(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(
    "after",
    [
        "2025-11-02T05:30Z",  # exactly the first occurrence
        "2025-11-02T05:45Z",  # after the first pass's slot
        "2025-11-02T06:00Z",  # second pass begins
        "2025-11-02T06:10Z",  # second pass, before the repeated 01:30
        "2025-11-02T06:30Z",  # the second 01:30 itself
    ],
)
def test_fixed_job_after_first_occurrence_moves_to_next_day(after: str) -> None:
    assert runs("30 1 * * *", "America/New_York", after, 1) == ["2025-11-03T06:30Z"]


def test_fixed_job_before_first_occurrence_inside_fold() -> None:
    assert runs("30 1 * * *", "America/New_York", "2025-11-02T05:10Z", 1) == ["2025-11-02T05:30Z"]


def test_wildcard_job_skips_gap() -> None:
    assert local("*/15 * * * *", "America/New_York", "2025-03-09T06:30Z", 3) == [
        "03-09 01:45 EST",
        "03-09 03:00 EDT",
        "03-09 03:15 EDT",
    ]
    assert runs("30 * * * *", "America/New_York", "2025-03-09T06:00Z", 2) == [
        "2025-03-09T06:30Z",
        "2025-03-09T07:30Z",
    ]
    assert runs("* 2 * * *", "America/New_York", "2025-03-09T00:00Z", 1) == ["2025-03-10T06:00Z"]


def test_wildcard_job_fires_in_both_passes_of_fold() -> None:
    assert local("*/15 * * * *", "America/New_York", "2025-11-02T04:50Z", 9) == [
        "11-02 01:00 EDT",
        "11-02 01:15 EDT",
        "11-02 01:30 EDT",
        "11-02 01:45 EDT",
        "11-02 01:00 EST",
        "11-02 01:15 EST",
        "11-02 01:30 EST",
        "11-02 01:45 EST",
        "11-02 02:00 EST",
    ]
    assert runs("30 * * * *", "America/New_York", "2025-11-02T04:00Z", 4) == [
        "2025-11-02T04:30Z",
        "2025-11-02T05:30Z",
        "2025-11-02T06:30Z",
        "2025-11-02T07:30Z",
    ]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2025-11-02T05:20Z", ["2025-11-02T05:30Z", "2025-11-02T05:45Z", "2025-11-02T06:00Z"]),
        ("2025-11-02T05:50Z", ["2025-11-02T06:00Z", "2025-11-02T06:15Z"]),
        ("2025-11-02T06:20Z", ["2025-11-02T06:30Z", "2025-11-02T06:45Z", "2025-11-02T07:00Z"]),
    ],
)
def test_wildcard_job_starting_inside_fold(after: str, expected: list[str]) -> None:
    assert runs("*/15 * * * *", "America/New_York", after, len(expected)) == expected


def test_hourly_in_fold_and_gap() -> None:
    assert runs("@hourly", "Europe/London", "2025-10-25T23:30Z", 3) == [
        "2025-10-26T00:00Z",
        "2025-10-26T01:00Z",
        "2025-10-26T02:00Z",
    ]
    assert local("@hourly", "Europe/London", "2025-10-25T23:30Z", 3) == [
        "10-26 01:00 BST",
        "10-26 01:00 GMT",
        "10-26 02:00 GMT",
    ]
    assert local("@hourly", "Europe/Berlin", "2025-03-29T23:30Z", 2) == [
        "03-30 01:00 CET",
        "03-30 03:00 CEST",
    ]


def test_lord_howe_half_hour_fold_wildcard() -> None:
    # 01:30-02:00 repeats: the wildcard job runs in both 30-minute passes.
    assert local("*/20 * * * *", "Australia/Lord_Howe", "2025-04-05T14:15Z", 5) == [
        "04-06 01:20 +11",
        "04-06 01:40 +11",
        "04-06 01:40 +1030",
        "04-06 02:00 +1030",
        "04-06 02:20 +1030",
    ]


def test_havana_and_santiago_midnight() -> None:
    # Havana skips 00:00-01:00 on 2025-03-09: the midnight job runs at 01:00 CDT.
    assert local("0 0 * * *", "America/Havana", "2025-03-08T12:00Z", 2) == [
        "03-09 01:00 CDT",
        "03-10 00:00 CDT",
    ]
    # Santiago repeats 23:00-24:00 on 2025-04-05; a wildcard hour job runs twice at 23:00.
    assert local("0 * * * *", "America/Santiago", "2025-04-06T01:30Z", 3) == [
        "04-05 23:00 -03",
        "04-05 23:00 -04",
        "04-06 00:00 -04",
    ]


def test_dublin_negative_dst_behaves_like_london() -> None:
    for expression in ("30 1 * * *", "*/30 * * * *", "0 9 * * MON-FRI"):
        for after in ("2025-03-29T12:00Z", "2025-10-25T12:00Z"):
            assert runs(expression, "Europe/Dublin", after, 40) == runs(
                expression, "Europe/London", after, 40
            )


def test_apia_skipped_day_has_no_run_of_its_own() -> None:
    # 2011-12-30 never happened in Apia; the midnight job goes from the 29th to the 31st.
    assert local("0 0 * * *", "Pacific/Apia", "2011-12-28T12:00Z", 3) == [
        "12-29 00:00 -10",
        "12-31 00:00 +14",
        "01-01 00:00 +14",
    ]
    assert runs("*/30 * * * *", "Pacific/Apia", "2011-12-30T09:00Z", 3) == [
        "2011-12-30T09:30Z",
        "2011-12-30T10:00Z",
        "2011-12-30T10:30Z",
    ]


def test_zones_without_dst() -> None:
    assert runs("30 2 * * *", "Asia/Tokyo", "2025-03-09T00:00Z", 2) == [
        "2025-03-09T17:30Z",
        "2025-03-10T17:30Z",
    ]
    assert runs("0 9 * * *", "Asia/Kolkata", "2025-01-01T00:00Z", 2) == [
        "2025-01-01T03:30Z",
        "2025-01-02T03:30Z",
    ]
    assert runs("*/45 * * * *", "UTC", "2025-01-01T00:00Z", 3) == [
        "2025-01-01T00:45Z",
        "2025-01-01T01:00Z",
        "2025-01-01T01:45Z",
    ]


def test_results_are_aware_utc_whole_minutes_after_after() -> None:
    after = datetime(2025, 3, 9, 1, 59, 30, 5, tzinfo=timezone(timedelta(hours=-5)))
    results = next_runs("* * * * *", "America/New_York", after, 3)
    assert [r.tzinfo for r in results] == [UTC] * 3
    assert all(r.second == 0 and r.microsecond == 0 for r in results)
    assert results == [at("2025-03-09T07:00Z"), at("2025-03-09T07:01Z"), at("2025-03-09T07:02Z")]
    assert next_runs("* * * * *", "UTC", at("2025-01-01T00:00Z"), 1) == [at("2025-01-01T00:01Z")]


def test_naive_after_and_bad_count_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_runs("* * * * *", "UTC", datetime(2025, 1, 1), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        previous_run("* * * * *", "UTC", datetime(2025, 1, 1))
    for bad in (0, -1, 1001):
        with pytest.raises(ValueError, match=rf"^count {bad} out of range 1-1000$"):
            next_runs("* * * * *", "UTC", at("2025-01-01T00:00Z"), bad)
    with pytest.raises(ValueError, match="count must be an integer"):
        next_runs("* * * * *", "UTC", at("2025-01-01T00:00Z"), True)


def test_previous_run() -> None:
    ny = "America/New_York"
    assert previous_run("30 2 * * *", ny, at("2025-03-10T00:00Z")) == at("2025-03-09T07:00Z")
    assert previous_run("30 2 * * *", ny, at("2025-03-09T07:00Z")) == at("2025-03-08T07:30Z")
    assert previous_run("30 1 * * *", ny, at("2025-11-02T07:00Z")) == at("2025-11-02T05:30Z")
    assert previous_run("*/15 * * * *", ny, at("2025-11-02T06:05Z")) == at("2025-11-02T06:00Z")
    assert previous_run("*/15 * * * *", ny, at("2025-11-02T06:00Z")) == at("2025-11-02T05:45Z")
    assert previous_run("0 0 29 2 *", "UTC", at("2025-01-01T00:00Z")) == at("2024-02-29T00:00Z")
    assert previous_run("0 0 29 2 1", "UTC", at("2025-01-01T00:00Z")) == at("2024-02-29T00:00Z")
    assert previous_run("0 0 29 * 1", "UTC", at("2025-01-01T00:00Z")) == at("2024-12-30T00:00Z")
    assert previous_run("0 0 29 2 */7", "UTC", at("2025-01-01T00:00Z")) is None
