"""DAILY / WEEKLY / MONTHLY presets: expressions, runs, clamping and validation."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.scheduling import (
    ScheduleError,
    next_runs,
    preset_expression,
    preset_next_runs,
    preset_previous_run,
    validate_preset,
)

AFTER = datetime(2025, 1, 1, tzinfo=UTC)


def local_days(frequency: str, config: dict[str, Any], count: int) -> list[str]:
    zone = ZoneInfo(config.get("timezone") or "UTC")
    return [
        r.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        for r in preset_next_runs(frequency, config, AFTER, count)
    ]


@pytest.mark.parametrize(
    ("frequency", "config", "expression"),
    [
        ("DAILY", {"hour": 9, "minute": 5}, "5 9 * * *"),
        ("WEEKLY", {"hour": 0, "minute": 0, "dayOfWeek": 0}, "0 0 * * 0"),
        ("WEEKLY", {"hour": 23, "minute": 59, "dayOfWeek": 6}, "59 23 * * 6"),
        ("MONTHLY", {"hour": 7, "minute": 30, "dayOfMonth": 31}, "30 7 31 * *"),
    ],
)
def test_preset_expression(frequency: str, config: dict[str, Any], expression: str) -> None:
    assert preset_expression(frequency, config) == expression


@pytest.mark.parametrize(
    ("frequency", "config"),
    [
        ("DAILY", {"hour": 9, "minute": 0, "timezone": "America/New_York"}),
        ("DAILY", {"hour": 2, "minute": 30, "timezone": "America/New_York"}),
        ("WEEKLY", {"hour": 1, "minute": 30, "timezone": "Europe/London", "dayOfWeek": 0}),
        ("MONTHLY", {"hour": 2, "minute": 0, "timezone": "Europe/Berlin", "dayOfMonth": 30}),
        ("MONTHLY", {"hour": 0, "minute": 0, "timezone": "America/Havana", "dayOfMonth": 9}),
    ],
)
def test_daily_and_weekly_presets_equal_their_cron_expression(
    frequency: str, config: dict[str, Any]
) -> None:
    # Within months that have the day, a preset and its expression agree (DST rules included).
    expression = preset_expression(frequency, config)
    expected = next_runs(expression, config["timezone"], AFTER, 60)
    got = preset_next_runs(frequency, config, AFTER, 60)
    if frequency == "MONTHLY" and config["dayOfMonth"] > 28:
        assert {r for r in expected if r <= got[-1]} <= set(got)
    else:
        assert got == expected


def test_timezone_defaults_to_utc() -> None:
    for config in ({"hour": 9, "minute": 0}, {"hour": 9, "minute": 0, "timezone": None}):
        assert preset_next_runs("DAILY", config, AFTER, 2) == [
            datetime(2025, 1, 1, 9, tzinfo=UTC),
            datetime(2025, 1, 2, 9, tzinfo=UTC),
        ]


def test_weekly_runs_on_the_given_weekday() -> None:
    config = {"hour": 9, "minute": 0, "dayOfWeek": 1, "timezone": "Asia/Tokyo"}
    assert local_days("WEEKLY", config, 3) == [
        "2025-01-06 09:00",
        "2025-01-13 09:00",
        "2025-01-20 09:00",
    ]


def test_monthly_31_clamps_to_last_day() -> None:
    config = {"hour": 9, "minute": 0, "dayOfMonth": 31, "timezone": "Europe/London"}
    days = local_days("MONTHLY", config, 14)
    assert days == [
        "2025-01-31 09:00",
        "2025-02-28 09:00",
        "2025-03-31 09:00",
        "2025-04-30 09:00",
        "2025-05-31 09:00",
        "2025-06-30 09:00",
        "2025-07-31 09:00",
        "2025-08-31 09:00",
        "2025-09-30 09:00",
        "2025-10-31 09:00",
        "2025-11-30 09:00",
        "2025-12-31 09:00",
        "2026-01-31 09:00",
        "2026-02-28 09:00",
    ]
    # Plain cron keeps its meaning: only months with a 31st.
    assert len(next_runs("0 9 31 * *", "Europe/London", AFTER, 7)) == 7
    assert next_runs("0 9 31 * *", "Europe/London", AFTER, 2)[1].month == 3


@pytest.mark.parametrize(("day", "february"), [(29, "2028-02-29"), (30, "2028-02-29")])
def test_monthly_29_30_in_leap_year(day: int, february: str) -> None:
    config = {"hour": 0, "minute": 0, "dayOfMonth": day}
    runs = [r.strftime("%Y-%m-%d") for r in preset_next_runs("MONTHLY", config, AFTER, 48)]
    assert "2025-02-28" in runs
    assert february in runs
    assert len({r[:7] for r in runs}) == 48


def test_presets_follow_dst_rules() -> None:
    gap = {"hour": 2, "minute": 30, "timezone": "America/New_York"}
    after = datetime(2025, 3, 8, 12, tzinfo=UTC)
    assert preset_next_runs("DAILY", gap, after, 2) == [
        datetime(2025, 3, 9, 7, 0, tzinfo=UTC),
        datetime(2025, 3, 10, 6, 30, tzinfo=UTC),
    ]
    fold = {"hour": 1, "minute": 30, "timezone": "America/New_York", "dayOfWeek": 0}
    assert preset_next_runs("WEEKLY", fold, datetime(2025, 11, 1, tzinfo=UTC), 2) == [
        datetime(2025, 11, 2, 5, 30, tzinfo=UTC),
        datetime(2025, 11, 9, 6, 30, tzinfo=UTC),
    ]
    assert preset_next_runs("WEEKLY", fold, datetime(2025, 11, 2, 6, 15, tzinfo=UTC), 1) == [
        datetime(2025, 11, 9, 6, 30, tzinfo=UTC)
    ]


def test_preset_previous_run() -> None:
    config = {"hour": 9, "minute": 0, "dayOfMonth": 31, "timezone": "UTC"}
    before = datetime(2025, 3, 15, tzinfo=UTC)
    assert preset_previous_run("MONTHLY", config, before) == datetime(2025, 2, 28, 9, tzinfo=UTC)
    daily = {"hour": 9, "minute": 0}
    assert preset_previous_run("DAILY", daily, datetime(2025, 3, 15, 9, tzinfo=UTC)) == datetime(
        2025, 3, 14, 9, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("frequency", "config", "message", "field"),
    [
        ("DAILY", {"hour": 24, "minute": 0}, "hour 24 out of range 0-23", "hour"),
        ("DAILY", {"hour": -1, "minute": 0}, "hour -1 out of range 0-23", "hour"),
        ("DAILY", {"hour": 1, "minute": 60}, "minute 60 out of range 0-59", "minute"),
        ("DAILY", {"minute": 0}, "hour required for DAILY", "hour"),
        ("DAILY", {"hour": 1}, "minute required for DAILY", "minute"),
        ("DAILY", {"hour": True, "minute": 0}, "hour must be an integer, got True", "hour"),
        ("DAILY", {"hour": "9", "minute": 0}, "hour must be an integer, got '9'", "hour"),
        ("DAILY", {"hour": 9.0, "minute": 0}, "hour must be an integer, got 9.0", "hour"),
        ("WEEKLY", {"hour": 1, "minute": 0}, "dayOfWeek required for WEEKLY", "dayOfWeek"),
        (
            "WEEKLY",
            {"hour": 1, "minute": 0, "dayOfWeek": 7},
            "dayOfWeek 7 out of range 0-6",
            "dayOfWeek",
        ),
        (
            "WEEKLY",
            {"hour": 1, "minute": 0, "dayOfWeek": False},
            "dayOfWeek must be an integer, got False",
            "dayOfWeek",
        ),
        ("MONTHLY", {"hour": 1, "minute": 0}, "dayOfMonth required for MONTHLY", "dayOfMonth"),
        (
            "MONTHLY",
            {"hour": 1, "minute": 0, "dayOfMonth": 32},
            "dayOfMonth 32 out of range 1-31",
            "dayOfMonth",
        ),
        (
            "MONTHLY",
            {"hour": 1, "minute": 0, "dayOfMonth": 0},
            "dayOfMonth 0 out of range 1-31",
            "dayOfMonth",
        ),
        (
            "DAILY",
            {"hour": 1, "minute": 0, "timezone": "Mars/Olympus"},
            "unknown time zone 'Mars/Olympus'",
            "timezone",
        ),
        ("HOURLY", {"hour": 1, "minute": 0}, "unknown frequency 'HOURLY'", "frequency"),
        (
            "CUSTOM",
            {"hour": 1, "minute": 0},
            "frequency CUSTOM has no preset time; give a cron expression instead",
            "frequency",
        ),
    ],
)
def test_preset_rejections(
    frequency: str, config: dict[str, Any], message: str, field: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_preset(frequency, config)
    assert str(caught.value) == message
    assert caught.value.field == field
    with pytest.raises(ScheduleError, match="^" + message.replace("(", r"\(") + "$"):
        preset_next_runs(frequency, config, AFTER, 1)


def test_lowercase_frequency_and_extra_keys_are_accepted() -> None:
    config = {"hour": 9, "minute": 0, "dayOfWeek": None, "dayOfMonth": None}
    assert preset_expression("daily", config) == "0 9 * * *"


def _problems(error: ScheduleError) -> list[tuple[str | None, str]]:
    return [(problem.field, problem.message) for problem in error.problems]


@pytest.mark.parametrize(
    ("frequency", "config", "problems"),
    [
        (
            "WEEKLY",
            {"hour": 9},
            [
                ("minute", "minute required for WEEKLY"),
                ("dayOfWeek", "dayOfWeek required for WEEKLY"),
            ],
        ),
        (
            "MONTHLY",
            {"hour": 25, "minute": "0", "dayOfMonth": 32, "timezone": "Mars/Base"},
            [
                ("hour", "hour 25 out of range 0-23"),
                ("minute", "minute must be an integer, got '0'"),
                ("dayOfMonth", "dayOfMonth 32 out of range 1-31"),
                ("timezone", "unknown time zone 'Mars/Base'"),
            ],
        ),
        (
            # Which keys are required is unknown without a frequency; given values still count.
            "HOURLY",
            {"hour": 24, "timezone": ""},
            [
                ("frequency", "unknown frequency 'HOURLY'"),
                ("hour", "hour 24 out of range 0-23"),
                ("timezone", "unknown time zone ''"),
            ],
        ),
        # A DAILY preset ignores the day keys it does not use, valid or not.
        (
            "DAILY",
            {"dayOfWeek": 9, "dayOfMonth": 0},
            [("hour", "hour required for DAILY"), ("minute", "minute required for DAILY")],
        ),
    ],
)
def test_every_field_at_fault_is_reported_at_once(
    frequency: str, config: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_preset(frequency, config)
    assert _problems(caught.value) == problems
    # One readable message for callers that show only one: every rule, in order.
    assert caught.value.message == "; ".join(message for _, message in problems)
    assert str(caught.value) == caught.value.message
    assert caught.value.field is None
    with pytest.raises(ScheduleError) as again:
        preset_next_runs(frequency, config, AFTER, 1)
    assert _problems(again.value) == problems


def test_a_single_problem_is_its_own_only_problem() -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_preset("WEEKLY", {"hour": 9, "minute": 0})
    assert caught.value.problems == (caught.value,)
    assert caught.value.field == "dayOfWeek"


def test_a_config_that_is_not_an_object_is_reported_with_the_frequency() -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_preset("YEARLY", [9, 0])  # type: ignore[arg-type]
    assert _problems(caught.value) == [
        ("frequency", "unknown frequency 'YEARLY'"),
        ("timeConfig", "timeConfig must be an object"),
    ]


def test_a_gathered_error_survives_pickling() -> None:
    # Errors cross process boundaries (worker pools, multiprocessing) by pickle.
    with pytest.raises(ScheduleError) as caught:
        validate_preset("WEEKLY", {"timezone": "Mars/Base"})
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - the bytes just written here
    assert _problems(copy) == _problems(caught.value)
    assert copy.message == caught.value.message
    assert len(copy.problems) == 4


def test_joined_flattens_and_keeps_a_shared_field() -> None:
    first = ScheduleError("minute 61 out of range 0-59", "schedule")
    second = ScheduleError("hour 25 out of range 0-23", "schedule")
    zone = ScheduleError("unknown time zone 'Mars/Base'", "timezone")
    both = ScheduleError.joined([first, second])
    assert both.field == "schedule"
    assert ScheduleError.joined([first]) is first
    everything = ScheduleError.joined([both, zone])
    assert everything.problems == (first, second, zone)
    assert everything.field is None
