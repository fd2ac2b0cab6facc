"""Cron expression parsing: accepted syntax, day rules and every rejection message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.scheduling import (
    ScheduleError,
    next_runs,
    previous_run,
    validate_expression,
    validate_timezone,
)
from shared.scheduling.cronexpr import parse_expression

AFTER = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday


def utc_runs(expression: str, count: int = 5, after: datetime = AFTER) -> list[str]:
    return [r.strftime("%Y-%m-%d %H:%M %a") for r in next_runs(expression, "UTC", after, count)]


@pytest.mark.parametrize(
    ("expression", "minutes", "hours", "doms", "months", "dows"),
    [
        ("* * * * *", range(60), range(24), range(1, 32), range(1, 13), range(7)),
        ("*/15 1-3 1,15 JAN-mar sun", (0, 15, 30, 45), (1, 2, 3), (1, 15), (1, 2, 3), (0,)),
        (
            "5-20/5 */6 */10 */4 1-5/2",
            (5, 10, 15, 20),
            (0, 6, 12, 18),
            (1, 11, 21, 31),
            (1, 5, 9),
            (1, 3, 5),
        ),
        ("0 0 * * 7", (0,), (0,), range(1, 32), range(1, 13), (0,)),
        ("0 0 * * 5-7", (0,), (0,), range(1, 32), range(1, 13), (0, 5, 6)),
        ("0 0 * * Mon-FRI", (0,), (0,), range(1, 32), range(1, 13), (1, 2, 3, 4, 5)),
        ("0 0 * dec,Jan *", (0,), (0,), range(1, 32), (1, 12), range(7)),
        ("0 0 * * */2", (0,), (0,), range(1, 32), range(1, 13), (0, 2, 4, 6)),
        ("  1   2  3  4  5 ", (1,), (2,), (3,), (4,), (5,)),
        ("0,*/20,59 0 1 1 *", (0, 20, 40, 59), (0,), (1,), (1,), range(7)),
    ],
)
def test_fields_parse_to_sorted_values(
    expression: str, minutes: object, hours: object, doms: object, months: object, dows: object
) -> None:
    spec = parse_expression(expression)
    assert spec.minutes == tuple(minutes)  # type: ignore[call-overload]
    assert spec.hours == tuple(hours)  # type: ignore[call-overload]
    assert spec.days_of_month == tuple(doms)  # type: ignore[call-overload]
    assert spec.months == tuple(months)  # type: ignore[call-overload]
    assert spec.days_of_week == tuple(dows)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros_expand(macro: str, expanded: str) -> None:
    assert parse_expression(macro).expression == expanded
    assert next_runs(macro, "UTC", AFTER, 3) == next_runs(expanded, "UTC", AFTER, 3)


def test_hourly_is_a_wildcard_job_and_daily_is_fixed() -> None:
    assert not parse_expression("@hourly").fixed_time
    assert parse_expression("@daily").fixed_time
    assert not parse_expression("0 */2 * * *").fixed_time
    assert not parse_expression("*/5 3 * * *").fixed_time
    assert parse_expression("0-59 3 * * *").fixed_time


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("60 * * * *", "minute 60 out of range 0-59"),
        ("* 24 * * *", "hour 24 out of range 0-23"),
        ("* * 0 * *", "day-of-month 0 out of range 1-31"),
        ("* * 32 * *", "day-of-month 32 out of range 1-31"),
        ("* * * 13 *", "month 13 out of range 1-12"),
        ("* * * 0 *", "month 0 out of range 1-12"),
        ("* * * * 8", "day-of-week 8 out of range 0-7"),
        (
            "0 0 0 * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6; "
            "a seconds or year field is not supported: herald schedules to the minute",
        ),
        (
            "0 0 0 * * * 2025",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 7; "
            "a seconds or year field is not supported: herald schedules to the minute",
        ),
        ("0 0 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"),
        ("5-2 * * * *", "minute range 5-2 is descending"),
        ("* * * * FRI-MON", "day-of-week range FRI-MON is descending"),
        ("*/0 * * * *", "minute step 0 out of range 1-60"),
        ("1-5/0 * * * *", "minute step 0 out of range 1-60"),
        ("*/99999999999999999999 * * * *", "minute step 99999999999999999999 out of range 1-60"),
        ("0 */25 * * *", "hour step 25 out of range 1-24"),
        ("0 0 1-31/32 * *", "day-of-month step 32 out of range 1-31"),
        ("0 0 * */13 *", "month step 13 out of range 1-12"),
        ("0 0 * * */9", "day-of-week step 9 out of range 1-8"),
        ("*/x * * * *", "minute step 'x' is not a number"),
        ("10/15 * * * *", "minute step '10/15' needs a range or '*' before '/'"),
        (
            "L * * * *",
            "minute 'L': 'L' goes alone or in LW in day-of-month, "
            "or after a weekday in day-of-week (5L)",
        ),
        (
            "0 0 1-15W * *",
            "day-of-month '1-15W': 'W' goes after one day of the month (15W) or in LW",
        ),
        (
            "0 0 L/2 * *",
            "day-of-month 'L/2': 'L' goes alone or in LW in day-of-month, "
            "or after a weekday in day-of-week (5L)",
        ),
        (
            "0 0 * * 1-5L",
            "day-of-week '1-5L': 'L' goes alone or in LW in day-of-month, "
            "or after a weekday in day-of-week (5L)",
        ),
        (
            "0 0 * 2# *",
            "month '2#': '#' goes between a weekday and a week 1-5 in day-of-week (1#2)",
        ),
        ("0 0 * * 5#6", "day-of-week '5#6': the week after '#' must be 1-5"),
        ("0 0 * * 5#", "day-of-week '5#': the week after '#' must be 1-5"),
        ("0 0 * * 8L", "day-of-week 8 out of range 0-7"),
        ("0 0 32W * *", "day-of-month 32 out of range 1-31"),
        ("0 0 ? * *", "day-of-month '?': '?' is not supported; use '*'"),
        ("H * * * *", "minute 'H': 'H' is not supported"),
        ("1,,2 * * * *", "minute has an empty list item"),
        ("1, * * * *", "minute has an empty list item"),
        ("-1 * * * *", "minute range '-1' is incomplete"),
        ("a * * * *", "minute 'a' is not a number"),
        ("0 0 * JAN-XYZ *", "month 'XYZ' is not a number"),
        ("0 0 * * */MON", "day-of-week step 'MON' is not a number"),
        ("0 0 30 2 *", "0 0 30 2 * never fires"),
        ("0 0 31 4,6,9,11 *", "0 0 31 4,6,9,11 * never fires"),
        ("0 0 30-31 2 */2", "0 0 30-31 2 */2 never fires"),
        (
            "@reboot",
            "@reboot is not supported: herald runs jobs on the clock, not at start-up; "
            "use a 5-field expression or one of "
            "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        ),
        (
            "@every",
            "unknown macro '@every'; herald knows "
            "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        ),
        ("0 0 \u0661 * *", "day-of-month '\u0661' is not a number"),
    ],
)
def test_rejections_name_field_and_rule(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_expression(expression)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("60 * * * *", "minute"),
        ("* * * * 8", "day-of-week"),
        ("0 0 0 * * *", "schedule"),
        ("0 0 30 2 *", "schedule"),
    ],
)
def test_error_carries_field(expression: str, field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_expression(expression)
    assert caught.value.field == field


def test_unknown_time_zone() -> None:
    for name in (
        "Mars/Olympus",
        "",
        "../etc/passwd",
        "/etc/localtime",
        " UTC",
        "Factory",
        "localtime",
        "posixrules",
        "posix/Europe/Paris",
        "right/UTC",
    ):
        with pytest.raises(ScheduleError) as caught:
            validate_timezone(name)
        assert str(caught.value) == f"unknown time zone {name!r}"
        assert caught.value.field == "timezone"
    with pytest.raises(ScheduleError, match=r"^unknown time zone 'Mars/Olympus'$"):
        next_runs("0 0 * * *", "Mars/Olympus", AFTER, 1)
    validate_timezone("America/New_York")
    validate_timezone(None)


def test_dom_and_dow_both_restricted_fire_on_either() -> None:
    # Feb 31 never exists, so only the Monday rule fires, on Mondays in February.
    assert utc_runs("0 0 31 2 1", 3) == [
        "2025-02-03 00:00 Mon",
        "2025-02-10 00:00 Mon",
        "2025-02-17 00:00 Mon",
    ]
    assert utc_runs("0 0 13 * 5", 4) == [
        "2025-01-03 00:00 Fri",
        "2025-01-10 00:00 Fri",
        "2025-01-13 00:00 Mon",
        "2025-01-17 00:00 Fri",
    ]


def test_star_step_in_day_field_means_both_must_match() -> None:
    # "*/2" starts with "*", so odd days AND Mondays (croniter reads this as OR).
    assert utc_runs("0 0 */2 * MON", 3) == [
        "2025-01-13 00:00 Mon",
        "2025-01-27 00:00 Mon",
        "2025-02-03 00:00 Mon",
    ]
    assert utc_runs("0 0 13 * */7", 2) == ["2025-04-13 00:00 Sun", "2025-07-13 00:00 Sun"]


def test_plain_day_of_month_31_skips_short_months() -> None:
    assert utc_runs("0 0 31 * *", 4) == [
        "2025-01-31 00:00 Fri",
        "2025-03-31 00:00 Mon",
        "2025-05-31 00:00 Sat",
        "2025-07-31 00:00 Thu",
    ]


def test_leap_day_and_sunday_seven() -> None:
    assert utc_runs("0 0 29 2 *", 2) == ["2028-02-29 00:00 Tue", "2032-02-29 00:00 Sun"]
    assert utc_runs("0 0 * * 7", 1) == utc_runs("0 0 * * 0", 1) == ["2025-01-05 00:00 Sun"]
    assert utc_runs("0 0 29 2 */7", 1) == ["2032-02-29 00:00 Sun"]


def test_every_cron_field_at_fault_is_reported_at_once() -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_expression("61 25 * 13 MON")
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("minute", "minute 61 out of range 0-59"),
        ("hour", "hour 25 out of range 0-23"),
        ("month", "month 13 out of range 1-12"),
    ]
    assert str(caught.value) == (
        "minute 61 out of range 0-59; hour 25 out of range 0-23; month 13 out of range 1-12"
    )


def test_a_bad_expression_and_an_unknown_zone_are_reported_together() -> None:
    with pytest.raises(ScheduleError) as caught:
        next_runs("0 0 32 * *", "Mars/Base", AFTER, 1)
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("day-of-month", "day-of-month 32 out of range 1-31"),
        ("timezone", "unknown time zone 'Mars/Base'"),
    ]
    with pytest.raises(ScheduleError) as before:
        previous_run("@never", "Mars/Base", AFTER)
    assert [p.field for p in before.value.problems] == ["schedule", "timezone"]
