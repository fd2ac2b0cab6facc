"""The forms other schedulers use: L, LW, nW, nL, n#k, macros, and what herald refuses."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.scheduling import ScheduleError, next_runs, previous_run, validate_expression
from shared.scheduling.cronexpr import parse_expression
from shared.scheduling.monthdays import MonthDays

AFTER = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday
# Zones without DST over the drawn years (Kolkata's last change was in 1945).
STEADY_ZONES = ("UTC", "Etc/GMT-14", "Etc/GMT+7", "Asia/Kolkata")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def runs(expression: str, zone: str, after: str, count: int) -> list[str]:
    return [f"{r:%Y-%m-%dT%H:%MZ}" for r in next_runs(expression, zone, at(after), count)]


def local(expression: str, zone: str, after: str, count: int) -> list[str]:
    tz = ZoneInfo(zone)
    return [
        r.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        for r in next_runs(expression, zone, at(after), count)
    ]


def days(expression: str, count: int, after: datetime = AFTER) -> list[str]:
    return [r.strftime("%Y-%m-%d %a") for r in next_runs(expression, "UTC", after, count)]


def refused(expression: str) -> str | None:
    """Return why herald refuses the expression, or None when it accepts it."""
    try:
        validate_expression(expression)
    except ScheduleError as exc:
        return exc.message
    return None


# --- against cronsim, away from DST -------------------------------------------------------


@st.composite
def plain_days(draw: st.DrawFn, low: int, high: int) -> str:
    kind = draw(st.sampled_from(("one", "range", "list")))
    first = draw(st.integers(low, high))
    if kind == "one":
        return str(first)
    if kind == "range":
        return f"{first}-{draw(st.integers(first, high))}"
    return ",".join(map(str, sorted(set(draw(st.lists(st.integers(low, high), min_size=2))))))


@st.composite
def dom_fields(draw: st.DrawFn) -> str:
    calendar_terms = draw(st.lists(st.sampled_from(("L", "LW")), min_size=0, max_size=2))
    items = [*calendar_terms]
    if not items or draw(st.booleans()):
        items.append(draw(st.one_of(st.just("*"), st.just("*/2"), plain_days(1, 31))))
    if items[-1].startswith("*"):
        # A leading "*" decides the AND rule, so it goes first, as people write it.
        items.insert(0, items.pop())
    return ",".join(dict.fromkeys(items))


@st.composite
def dow_fields(draw: st.DrawFn) -> str:
    terms = st.one_of(
        st.builds(lambda d: f"{d}L", st.integers(0, 7)),
        st.builds(lambda d, k: f"{d}#{k}", st.integers(0, 7), st.integers(1, 5)),
    )
    items = draw(st.lists(terms, min_size=0, max_size=2))
    if not items or draw(st.booleans()):
        items.insert(0, draw(st.one_of(st.just("*"), st.just("*/3"), plain_days(0, 6))))
    return ",".join(dict.fromkeys(items))


@st.composite
def calendar_expressions(draw: st.DrawFn) -> str:
    minute = draw(st.sampled_from(("0", "30", "*/20", "15,45")))
    hour = draw(st.sampled_from(("0", "9", "23", "*/6", "1-2")))
    month = draw(st.sampled_from(("*", "*", "2", "1,3", "2-4", "12")))
    dom = draw(dom_fields())
    dow = draw(dow_fields())
    if "#" not in dow and "L" not in dow and not any(term in dom for term in ("L", "W")):
        dow = draw(st.sampled_from(("5L", "1#2")))
    return f"{minute} {hour} {dom} {month} {dow}"


@settings(max_examples=250, deadline=None)
@given(
    calendar_expressions(),
    st.sampled_from(STEADY_ZONES),
    st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1)),
)
@example("0 0 30 2 *,0L", "UTC", datetime(2000, 1, 1))
def test_calendar_forms_match_cronsim(expression: str, zone: str, naive: datetime) -> None:
    after = naive.replace(tzinfo=UTC)
    refusal = refused(expression)
    try:
        iterator = CronSim(expression, after.astimezone(ZoneInfo(zone)))
    except CronSimError:
        # cronsim refuses some expressions no date can match (`0 0 30 2 *,0L`: the 30th of
        # February, as a star in day-of-week makes both day fields apply); herald too.
        assert refusal == f"{expression} never fires"
        return
    if refusal is not None:
        # Refused only when no date can ever match; cronsim then finds nothing either.
        assert refusal == f"{expression} never fires"
        with pytest.raises(StopIteration):
            next(iterator)
        return
    expected = [next(iterator).astimezone(UTC) for _ in range(12)]
    assert next_runs(expression, zone, after, 12) == expected


@settings(max_examples=60, deadline=None)
@given(calendar_expressions(), st.datetimes(datetime(1995, 1, 1), datetime(2055, 1, 1)))
def test_previous_run_of_calendar_forms_matches_cronsim_backwards(
    expression: str, naive: datetime
) -> None:
    before = naive.replace(tzinfo=UTC)
    if refused(expression) is not None:
        return
    found = previous_run(expression, "UTC", before)
    # Backwards from `before`, cronsim gives the last run strictly before it.
    expected = next(CronSim(expression, before, reverse=True), None)
    if found is None:
        # herald looks back about five years.
        assert expected is None or expected < before - timedelta(days=5 * 365)
    else:
        assert found == expected


# --- nW: the nearest weekday, never across the month's edge ---------------------------------


def nearest_weekday_model(year: int, month: int, day: int) -> date | None:
    """The Quartz rule stated with dates: Saturday back, Sunday on, but stay in the month."""
    if day > calendar.monthrange(year, month)[1]:
        return None
    target = date(year, month, day)
    if target.weekday() == calendar.SATURDAY:
        earlier = target - timedelta(days=1)
        return earlier if earlier.month == month else target + timedelta(days=2)
    if target.weekday() == calendar.SUNDAY:
        later = target + timedelta(days=1)
        return later if later.month == month else target - timedelta(days=2)
    return target


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 31), st.integers(1970, 2090), st.integers(1, 12))
def test_nearest_weekday_matches_the_date_model(day: int, year: int, month: int) -> None:
    start = datetime(year, month, 1, tzinfo=UTC) - timedelta(minutes=1)
    expected: list[datetime] = []
    cursor_year, cursor_month = year, month
    while len(expected) < 6:
        found = nearest_weekday_model(cursor_year, cursor_month, day)
        if found is not None:
            expected.append(datetime(found.year, found.month, found.day, 8, 15, tzinfo=UTC))
        cursor_year, cursor_month = divmod(cursor_year * 12 + cursor_month, 12)
        cursor_month += 1
    assert next_runs(f"15 8 {day}W * *", "UTC", start, 6) == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # 2025-02-01 is a Saturday: not back into January, on to Monday the 3rd.
        ("0 0 1W 2 *", AFTER, "2025-02-03 Mon"),
        # 2025-06-01 is a Sunday: Monday the 2nd.
        ("0 0 1W 6 *", AFTER, "2025-06-02 Mon"),
        # 2025-08-31 is a Sunday: not on into September, back to Friday the 29th.
        ("0 0 31W 8 *", AFTER, "2025-08-29 Fri"),
        # 2025-05-31 is a Saturday: Friday the 30th.
        ("0 0 31W 5 *", AFTER, "2025-05-30 Fri"),
        # 2025-11-30, the last day of a 30-day month, is a Sunday: Friday the 28th.
        ("0 0 30W 11 *", AFTER, "2025-11-28 Fri"),
        # Mid-month: Saturday 2025-02-15 moves back, Sunday 2025-06-15 moves on.
        ("0 0 15W 2 *", AFTER, "2025-02-14 Fri"),
        ("0 0 15W 6 *", AFTER, "2025-06-16 Mon"),
        # A weekday stays put (2025-01-15 is a Wednesday).
        ("0 0 15W 1 *", AFTER, "2025-01-15 Wed"),
        # February 29th exists only in leap years; 2032-02-29 is a Sunday, the month's last day.
        ("0 0 29W 2 *", AFTER, "2028-02-29 Tue"),
        ("0 0 29W 2 *", datetime(2029, 1, 1, tzinfo=UTC), "2032-02-27 Fri"),
    ],
)
def test_nearest_weekday_at_month_edges(expression: str, after: datetime, expected: str) -> None:
    assert days(expression, 1, after) == [expected]


def test_nearest_weekday_skips_months_without_the_day() -> None:
    # Quartz's rule: the day must exist, as a plain 31 needs it (cronsim has no W).
    assert days("0 0 31W * *", 6) == [
        "2025-01-31 Fri",
        "2025-03-31 Mon",
        "2025-05-30 Fri",
        "2025-07-31 Thu",
        "2025-08-29 Fri",
        "2025-10-31 Fri",
    ]
    with pytest.raises(ScheduleError, match=r"^0 0 30W 2 \* never fires$"):
        validate_expression("0 0 30W 2 *")


def test_last_weekday_and_last_day() -> None:
    # May 2025 ends on a Saturday, August 2025 on a Sunday.
    assert days("0 0 L * *", 8)[3:8] == [
        "2025-04-30 Wed",
        "2025-05-31 Sat",
        "2025-06-30 Mon",
        "2025-07-31 Thu",
        "2025-08-31 Sun",
    ]
    assert days("0 0 LW * *", 8)[3:8] == [
        "2025-04-30 Wed",
        "2025-05-30 Fri",
        "2025-06-30 Mon",
        "2025-07-31 Thu",
        "2025-08-29 Fri",
    ]
    assert days("0 0 L 2 *", 2) == ["2025-02-28 Fri", "2026-02-28 Sat"]
    assert days("0 0 L 2 *", 1, datetime(2028, 1, 1, tzinfo=UTC)) == ["2028-02-29 Tue"]


def test_last_and_nth_weekday() -> None:
    assert days("0 0 * * 5L", 3) == ["2025-01-31 Fri", "2025-02-28 Fri", "2025-03-28 Fri"]
    assert days("0 0 * * FRIL", 3) == days("0 0 * * 5L", 3)
    assert days("0 0 * * 7L", 2) == days("0 0 * * 0L", 2) == ["2025-01-26 Sun", "2025-02-23 Sun"]
    assert days("0 0 * * 1#2", 3) == ["2025-01-13 Mon", "2025-02-10 Mon", "2025-03-10 Mon"]
    assert days("0 0 * * mon#2", 3) == days("0 0 * * 1#2", 3)
    # A month without a fifth Friday has no run: January, May, August, October 2025 have one.
    assert days("0 0 * * 5#5", 4) == [
        "2025-01-31 Fri",
        "2025-05-30 Fri",
        "2025-08-29 Fri",
        "2025-10-31 Fri",
    ]
    # A fifth Monday in February only in a leap year starting on a Monday: 2044.
    assert days("0 0 * 2 1#5", 1) == ["2044-02-29 Mon"]
    assert days("0 0 * * 1#1,5L", 3) == ["2025-01-06 Mon", "2025-01-31 Fri", "2025-02-03 Mon"]


# --- how the two day fields combine ---------------------------------------------------------


def test_restricted_day_fields_combine_by_either_with_calendar_forms() -> None:
    # Neither field starts with "*": the last day of the month OR any Friday.
    assert days("0 0 L * 5", 6)[3:6] == ["2025-01-24 Fri", "2025-01-31 Fri", "2025-02-07 Fri"]
    assert days("0 0 L 2 5", 5) == [
        "2025-02-07 Fri",
        "2025-02-14 Fri",
        "2025-02-21 Fri",
        "2025-02-28 Fri",
        "2026-02-06 Fri",
    ]
    # The 1st OR the last Friday.
    assert days("0 0 1 * 5L", 3) == ["2025-01-31 Fri", "2025-02-01 Sat", "2025-02-28 Fri"]


def test_a_star_day_field_makes_both_match_with_calendar_forms() -> None:
    # "*/2" starts with "*": odd days AND the last Friday of the month.
    assert days("0 0 */2 * 5L", 3) == ["2025-01-31 Fri", "2025-04-25 Fri", "2025-06-27 Fri"]
    # "*" in day-of-week: only the last day (every weekday matches).
    assert days("0 0 L * *", 1) == ["2025-01-31 Fri"]
    # "*/2" in day-of-week: the last day of the month when it is a Sun, Tue, Thu or Sat.
    assert days("0 0 L * */2", 3) == ["2025-05-31 Sat", "2025-07-31 Thu", "2025-08-31 Sun"]
    # Both calendar forms, neither starting with "*": either.
    assert days("0 0 LW * 1#1", 3) == ["2025-01-06 Mon", "2025-01-31 Fri", "2025-02-03 Mon"]


def test_calendar_forms_that_can_never_match_together_are_refused() -> None:
    for expression in ("0 0 1W * */7", "0 0 30W 2 *", "0 0 */31 * 1#2", "0 0 29W 2 */7"):
        with pytest.raises(ScheduleError, match=r"never fires$") as caught:
            validate_expression(expression)
        assert caught.value.field == "schedule"


def test_parsed_calendar_terms() -> None:
    spec = parse_expression("0 0 1,15W,L,LW * 1-5,5L,SUN#2,7#1")
    assert spec.days_of_month == (1,)
    assert spec.days_of_week == (1, 2, 3, 4, 5)
    assert spec.month_days == MonthDays(
        last_day=True,
        last_weekday=True,
        nearest_weekday=(15,),
        last_of=(5,),
        nth=((0, 1), (0, 2)),
    )
    assert not parse_expression("0 0 1 * 5").month_days


# --- across DST transitions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # 2026-03-31 is a Tuesday, not Berlin's DST day: a plain 02:30 CEST.
        ("30 2 L * *", "Europe/Berlin", "2026-03-30T12:00Z", ["2026-03-31 02:30 CEST"]),
        # The last Sunday of March is the DST day: 02:30 falls in the gap, runs at 03:00.
        ("30 2 * 3 0L", "Europe/Berlin", "2026-01-01T00:00Z", ["2026-03-29 03:00 CEST"]),
        # The last Sunday of October repeats 02:30: it runs once, at the first (CEST).
        ("30 2 * 10 SUNL", "Europe/Berlin", "2026-01-01T00:00Z", ["2026-10-25 02:30 CEST"]),
        # 2024-03-31 is both the month's last day and the DST day; LW is Friday the 29th.
        ("30 2 L 3 *", "Europe/Berlin", "2024-01-01T00:00Z", ["2024-03-31 03:00 CEST"]),
        ("30 2 LW 3 *", "Europe/Berlin", "2024-01-01T00:00Z", ["2024-03-29 02:30 CET"]),
        ("30 2 31W 3 *", "Europe/Berlin", "2024-01-01T00:00Z", ["2024-03-29 02:30 CET"]),
        # New York springs forward on the second Sunday of March, falls back on the first of
        # November; 2026-11-01 is that Sunday, so 1W is Monday the 2nd, past the fold.
        ("30 2 * 3 0#2", "America/New_York", "2026-01-01T00:00Z", ["2026-03-08 03:00 EDT"]),
        ("30 1 * 11 0#1", "America/New_York", "2026-01-01T00:00Z", ["2026-11-01 01:30 EDT"]),
        ("30 1 1W 11 *", "America/New_York", "2026-01-01T00:00Z", ["2026-11-02 01:30 EST"]),
        ("30 1 * 3 0L", "Europe/London", "2026-01-01T00:00Z", ["2026-03-29 02:00 BST"]),
        ("30 1 * 10 SUNL", "Europe/London", "2026-01-01T00:00Z", ["2026-10-25 01:30 BST"]),
        # Southern hemisphere: Sydney springs forward on the first Sunday of October and
        # falls back on the first Sunday of April.
        ("30 2 * 10 0#1", "Australia/Sydney", "2026-01-01T00:00Z", ["2026-10-04 03:00 AEDT"]),
        ("30 2 * 4 0#1", "Australia/Sydney", "2026-01-01T00:00Z", ["2026-04-05 02:30 AEDT"]),
        # Lord Howe shifts by 30 minutes: 02:00-02:30 is skipped, 01:30-02:00 repeats.
        ("15 2 * 10 0#1", "Australia/Lord_Howe", "2026-01-01T00:00Z", ["2026-10-04 02:30 +11"]),
        ("45 1 * 4 0#1", "Australia/Lord_Howe", "2026-01-01T00:00Z", ["2026-04-05 01:45 +11"]),
        # Santiago skips the first Sunday of September's first hour and repeats the 23:00
        # hour of the Saturday before the first Sunday of April.
        ("30 0 * 9 0#1", "America/Santiago", "2026-01-01T00:00Z", ["2026-09-06 01:00 -03"]),
        ("30 23 * 4 6#1", "America/Santiago", "2026-01-01T00:00Z", ["2026-04-04 23:30 -03"]),
    ],
)
def test_calendar_forms_on_dst_days_behave_like_other_times(
    expression: str, zone: str, after: str, expected: list[str]
) -> None:
    assert local(expression, zone, after, len(expected)) == expected


def test_zones_that_abolished_dst() -> None:
    # Sao Paulo last sprang forward on 2018-11-04 (the first Sunday of November) at 00:00.
    assert local("30 0 * 11 0#1", "America/Sao_Paulo", "2018-01-01T00:00Z", 3) == [
        "2018-11-04 01:00 -02",
        "2019-11-03 00:30 -03",
        "2020-11-01 00:30 -03",
    ]
    # ... and last repeated 23:00-24:00 on Saturday 2019-02-16, the third of the month.
    assert runs("30 23 * 2 6#3", "America/Sao_Paulo", "2019-01-01T00:00Z", 2) == [
        "2019-02-17T01:30Z",
        "2020-02-16T02:30Z",
    ]
    # Istanbul's last spring-forward was the last Sunday of March 2016, 03:00 -> 04:00.
    assert local("30 3 * 3 0L", "Europe/Istanbul", "2016-01-01T00:00Z", 3) == [
        "2016-03-27 04:00 EEST",
        "2017-03-26 03:30 +03",
        "2018-03-25 03:30 +03",
    ]


def test_wildcard_calendar_job_skips_the_gap() -> None:
    # A wildcard job follows elapsed time: 02:00 and 02:30 never happen on 2024-03-31.
    assert local("*/30 2-3 L 3 *", "Europe/Berlin", "2024-03-30T12:00Z", 3) == [
        "2024-03-31 03:00 CEST",
        "2024-03-31 03:30 CEST",
        "2025-03-31 02:00 CEST",
    ]
    # ... and runs in both passes of a repeated hour (Berlin's last Sunday of October).
    assert local("*/30 2 * 10 0L", "Europe/Berlin", "2026-10-24T12:00Z", 5) == [
        "2026-10-25 02:00 CEST",
        "2026-10-25 02:30 CEST",
        "2026-10-25 02:00 CET",
        "2026-10-25 02:30 CET",
        "2027-10-31 02:00 CEST",
    ]


# --- macros and refusals ----------------------------------------------------------------------


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
        ("@Weekly", "0 0 * * 0"),
        ("  @HOURLY ", "0 * * * *"),
    ],
)
@pytest.mark.parametrize("zone", ["America/Havana", "Australia/Lord_Howe", "Europe/London"])
def test_macros_run_as_their_expansions_across_dst(macro: str, expanded: str, zone: str) -> None:
    after = at("2024-01-01T00:00Z")
    count = 30 if macro.strip().lower() in ("@yearly", "@annually") else 400
    assert next_runs(macro, zone, after, count) == next_runs(expanded, zone, after, count)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("@reboot", "@reboot is not supported: herald runs jobs on the clock"),
        ("@REBOOT", "@reboot is not supported"),
        ("@fortnightly", "unknown macro '@fortnightly'; herald knows @yearly, @annually"),
        ("0 30 9 * * ?", "got 6; a seconds or year field is not supported"),
        ("0 30 9 * * MON-FRI", "got 6; a seconds or year field is not supported"),
        ("0 30 9 ? * MON *", "got 7; a seconds or year field is not supported"),
        ("30 9 * * MON-FRI 2026", "got 6; a seconds or year field is not supported"),
    ],
)
def test_refusals_say_what_herald_supports(expression: str, words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_expression(expression)
    assert words in caught.value.message
    assert caught.value.field == "schedule"
    if "fields" in caught.value.message:
        assert "expected 5 fields (minute hour day-of-month month day-of-week)" in str(caught.value)
