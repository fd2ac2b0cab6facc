"""Compute a schedule's runs: walk local wall time field by field, then map each wall time to UTC.

Wall times are walked as plain integers (year, month, day, hour, minute) so a
single call jumps straight to the next candidate instead of stepping minute by
minute.  Each candidate is then resolved against the zone:

* an ordinary wall time maps to exactly one instant;
* a nonexistent wall time (spring-forward gap) moves a fixed-time job to the
  first instant after the gap and is dropped for a wildcard job;
* an ambiguous wall time (fall-back fold) runs a fixed-time job once, at the
  first occurrence, and a wildcard job in both passes.

A fixed-time job is one whose minute and hour fields do not start with ``*``
(``CronSpec.fixed_time``; presets always are): it names a time of day, and a
transition moves that time.  A wildcard job (``*/15 * * * *``, ``0 * * * *``)
follows elapsed time instead.  A fixed-time job's ``DstPolicy`` (``dst.py``)
may replace the two defaults above: ``gap SKIP`` drops a nonexistent wall time
(no run that day), ``fold SECOND`` runs an ambiguous one at its second
occurrence.  Wildcard jobs have no policy.  The defaults take the same path as
before: the policy is read only at a gap or a fold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.scheduling.cronexpr import (
    DAYS_ANY,
    DAYS_CALENDAR,
    DAYS_CLAMP,
    DAYS_DOM,
    DAYS_DOW,
    DAYS_OR,
    CronSpec,
    parse_expression,
)
from shared.scheduling.dst import DEFAULT_POLICY, DstPolicy, applied_policy, read_policy
from shared.scheduling.errors import ProblemCollector, ScheduleError
from shared.scheduling.zones import ceil_minute, load_zone, transition_instant

MAX_COUNT = 1000
# A valid schedule fires at least once in 28 years (the weekday cycle of Feb 29);
# the margin covers the Gregorian century rule.
SEARCH_YEARS = 400
_LAST_YEAR = 9998
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MINUTE = timedelta(minutes=1)

Wall = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Note:
    """Explain how a DST transition shaped one run.

    ``kind`` is one of ``moved`` (a nonexistent wall time ran at the end of the
    gap), ``merged`` (several wall times collapsed into one run, or a repeated
    wall time ran once, at its first occurrence), ``second`` (a repeated wall
    time ran once, at its second occurrence: fold policy SECOND),
    ``repeat-first``/``repeat-second`` (a wildcard job in each pass of a
    repeated hour), ``skipped`` (a wildcard job's nonexistent wall times before
    this run) and ``dropped`` (an ordinary run after wall times that gap policy
    SKIP dropped).  ``walls`` are the naive local wall times involved.
    ``dropped`` holds the wall times gap policy SKIP dropped since the previous
    run, whatever the kind.
    """

    kind: str
    walls: tuple[datetime, ...]
    dropped: tuple[datetime, ...] = ()


Run = tuple[datetime, Note | None]


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def _next_day(spec: CronSpec, year: int, month: int, day: int, last: int) -> int:
    """Return the first matching day at or after ``day`` in the month, or 0."""
    mode = spec.day_mode
    if day > last:
        return 0
    if mode == DAYS_ANY:
        return day
    if mode == DAYS_DOM:
        found = spec.next_dom[day]
        return found if found and found <= last else 0
    if mode == DAYS_CLAMP:
        target = min(spec.clamp_day, last)
        return target if target >= day else 0
    weekday = date(year, month, day).toordinal() % 7  # 0 = Sunday
    if mode == DAYS_DOW:
        found = day + spec.dow_delta[weekday]
        return found if found <= last else 0
    if mode == DAYS_CALENDAR:
        # monthdays.shape_index of this month, inlined: this is the hot loop.
        first_weekday = (weekday - day + 1) % 7
        return spec.day_tables[(last - 28) * 7 + first_weekday][day]
    dom_ok = spec.dom_ok
    dow_ok = spec.dow_ok
    either = mode == DAYS_OR
    while day <= last:
        if (dom_ok[day] or dow_ok[weekday]) if either else (dom_ok[day] and dow_ok[weekday]):
            return day
        day += 1
        weekday = (weekday + 1) % 7
    return 0


def next_wall(spec: CronSpec, wall: Wall, year_limit: int) -> Wall | None:
    """Return the first matching wall time at or after ``wall`` (fields may overflow by one)."""
    year, month, day, hour, minute = wall
    next_month = spec.next_month
    next_hour = spec.next_hour
    next_minute = spec.next_minute
    while True:
        found_month = next_month[month]
        if found_month < 0:
            year += 1
            if year > year_limit:
                return None
            month, day, hour, minute = spec.months[0], 1, 0, 0
        elif found_month != month:
            month, day, hour, minute = found_month, 1, 0, 0
        found_day = _next_day(spec, year, month, day, _days_in_month(year, month))
        if not found_day:
            month, day, hour, minute = month + 1, 1, 0, 0
            continue
        if found_day != day:
            day, hour, minute = found_day, 0, 0
        found_hour = next_hour[hour]
        if found_hour < 0:
            day, hour, minute = day + 1, 0, 0
            continue
        if found_hour != hour:
            hour, minute = found_hour, 0
        found_minute = next_minute[minute]
        if found_minute < 0:
            hour, minute = hour + 1, 0
            continue
        return (year, month, day, hour, found_minute)


def _as_wall(moment: datetime) -> Wall:
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute)


def _start_wall(zone: ZoneInfo, after: datetime) -> tuple[Wall, datetime]:
    """Return where to start walking wall time, and ``after`` in UTC."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    after_utc = after.astimezone(UTC)
    floor = after_utc.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
    first = zone.utcoffset(floor)
    second = zone.utcoffset(floor.replace(fold=1))
    assert first is not None
    assert second is not None
    if first > second:
        # ``after`` lies in a repeated hour: wall times before it in the first pass
        # still have second-pass instants later than ``after``, so walk the whole fold.
        instant = transition_instant(zone, floor)
        return _as_wall(instant + second), after_utc
    # The floor wall time itself is never later than ``after``.
    return _as_wall(floor + _MINUTE), after_utc


def iter_runs(
    spec: CronSpec, zone: ZoneInfo, after: datetime, policy: DstPolicy = DEFAULT_POLICY
) -> Iterator[Run]:
    """Yield runs strictly after ``after`` in increasing UTC order, each with its DST note.

    ``policy`` changes what a fixed-time job does in a gap or a fold; a wildcard job
    ignores it (the API refuses to store one on it: ``dst.check_applies``).
    """
    wall, after_utc = _start_wall(zone, after)
    year_limit = min(wall[0] + SEARCH_YEARS, _LAST_YEAR)
    fixed = spec.fixed_time
    utcoffset = zone.utcoffset
    skipped: list[datetime] = []
    found = next_wall(spec, wall, year_limit)
    while found is not None:
        year, month, day, hour, minute = found
        local = datetime(year, month, day, hour, minute)
        first = utcoffset(local)
        second = utcoffset(datetime(year, month, day, hour, minute, fold=1))
        assert first is not None
        assert second is not None
        if first == second or (fixed and first > second and policy.fold == "FIRST"):
            instant = (local - first).replace(tzinfo=UTC)
            if instant > after_utc:
                if skipped:
                    if fixed:
                        kind, walls = ("merged", (local,)) if first != second else ("dropped", ())
                        yield instant, Note(kind, walls, tuple(skipped))
                    else:
                        yield instant, Note("skipped", tuple(skipped))
                    skipped = []
                elif first != second:
                    yield instant, Note("merged", (local,))
                else:
                    yield instant, None
            found = next_wall(spec, (year, month, day, hour, minute + 1), year_limit)
        elif first < second:
            if not fixed or policy.gap == "SKIP":
                # A wildcard job follows elapsed time: a wall time that never happens never
                # runs. A fixed-time job whose gap policy is SKIP has no run that day.
                skipped.append(local)
                found = next_wall(spec, (year, month, day, hour, minute + 1), year_limit)
                continue
            run, found = _gap_run(spec, zone, local, second, year_limit)
            if run[0] > after_utc:
                yield run
        elif fixed:
            # Fold policy SECOND: the repeated wall time runs once, in the second pass. Every
            # wall time of the fold moves by the same amount, so runs stay in order.
            instant = (local - second).replace(tzinfo=UTC)
            if instant > after_utc:
                yield instant, Note("second", (local,), tuple(skipped))
                skipped = []
            found = next_wall(spec, (year, month, day, hour, minute + 1), year_limit)
        else:
            runs, found = _fold_runs(spec, zone, local, first, second, year_limit)
            for run in runs:
                if run[0] > after_utc:
                    yield run


def _gap_run(
    spec: CronSpec, zone: ZoneInfo, local: datetime, offset_after: timedelta, year_limit: int
) -> tuple[Run, Wall | None]:
    """Collapse every matching wall time in this gap into one run at the gap's end."""
    instant = ceil_minute(transition_instant(zone, local))
    gap_end = _as_wall(instant + offset_after)
    walls = [local]
    found = next_wall(spec, _bump(_as_wall(local)), year_limit)
    while found is not None and found < gap_end:
        walls.append(datetime(*found))
        found = next_wall(spec, _bump(found), year_limit)
    if found == gap_end:
        # The first real wall time after the gap is the same instant: run it once.
        found = next_wall(spec, _bump(found), year_limit)
        walls.append(datetime(*gap_end))
    kind = "moved" if len(walls) == 1 else "merged"
    return (instant.replace(tzinfo=UTC), Note(kind, tuple(walls))), found


def _fold_runs(
    spec: CronSpec,
    zone: ZoneInfo,
    local: datetime,
    first: timedelta,
    second: timedelta,
    year_limit: int,
) -> tuple[list[Run], Wall | None]:
    """List a wildcard job's runs in a repeated hour: every first-pass run, then every second."""
    instant = transition_instant(zone, local)
    fold_start = _as_wall(instant + second)
    fold_end = _as_wall(instant + first)
    walls: list[datetime] = []
    found = next_wall(spec, fold_start, year_limit)
    while found is not None and found < fold_end:
        walls.append(datetime(*found))
        found = next_wall(spec, _bump(found), year_limit)
    runs: list[Run] = [
        ((wall - first).replace(tzinfo=UTC), Note("repeat-first", (wall,))) for wall in walls
    ]
    runs.extend(
        ((wall - second).replace(tzinfo=UTC), Note("repeat-second", (wall,))) for wall in walls
    )
    return runs, found


def _bump(wall: Wall) -> Wall:
    year, month, day, hour, minute = wall
    return (year, month, day, hour, minute + 1)


def check_count(count: int) -> None:
    """Raise ScheduleError unless ``count`` is an int in 1..MAX_COUNT."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ScheduleError(f"count must be an integer, got {count!r}", "count")
    if not 1 <= count <= MAX_COUNT:
        raise ScheduleError(f"count {count} out of range 1-{MAX_COUNT}", "count")


def take_runs(
    spec: CronSpec,
    zone: ZoneInfo,
    after: datetime,
    count: int,
    policy: DstPolicy = DEFAULT_POLICY,
) -> list[datetime]:
    """Return the first ``count`` run instants after ``after`` (fewer if the search ends)."""
    check_count(count)
    result: list[datetime] = []
    append = result.append
    for instant, _note in iter_runs(spec, zone, after, policy):
        append(instant)
        if len(result) == count:
            break
    return result


# Growing look-back windows: dense schedules are found in the first, sparse ones later.
_LOOKBACK = (
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=40),
    timedelta(days=400),
    timedelta(days=5 * 366),
)


def find_previous(
    spec: CronSpec, zone: ZoneInfo, before: datetime, policy: DstPolicy = DEFAULT_POLICY
) -> datetime | None:
    """Return the last run strictly before ``before``, looking back about five years."""
    if before.tzinfo is None or before.utcoffset() is None:
        raise ValueError("before must be a timezone-aware datetime")
    before_utc = before.astimezone(UTC)
    for window in _LOOKBACK:
        latest: datetime | None = None
        # The forward walk from any start yields the same run set, so the last run of
        # (before - window, before) is the previous slot whenever the window holds one.
        for instant, _note in iter_runs(spec, zone, before_utc - window, policy):
            if instant >= before_utc:
                break
            latest = instant
        if latest is not None:
            return latest
    return None


def expression_spec(expression: str, timezone: str | None) -> tuple[CronSpec, ZoneInfo]:
    """Parse a cron expression and load its zone; a ScheduleError names the faults of both."""
    found = ProblemCollector()
    spec = found.check(parse_expression, expression)
    zone = found.check(load_zone, timezone)
    found.raise_found()
    assert spec is not None and zone is not None  # else a problem was raised just above
    return spec, zone


def _parsed_or_none(expression: str) -> CronSpec | None:
    """The parsed expression when it is valid (its faults are reported elsewhere)."""
    try:
        return parse_expression(expression)
    except ScheduleError:
        return None


def custom_spec(
    expression: str, timezone: str | None, gap_policy: object = None, fold_policy: object = None
) -> tuple[CronSpec, ZoneInfo, DstPolicy]:
    """Parse a cron expression, load its zone and read its DST policy (None: the default).

    A ScheduleError names every fault at once: the expression's, the zone's and the
    policy's, including a policy given to a schedule that has no fixed local time.
    """
    if gap_policy is None and fold_policy is None:
        return (*expression_spec(expression, timezone), DEFAULT_POLICY)
    found = ProblemCollector()
    parsed = found.check(expression_spec, expression, timezone)
    spec = parsed[0] if parsed is not None else _parsed_or_none(expression)
    policy: DstPolicy | None = None
    if spec is not None:
        policy = found.check(applied_policy, spec, gap_policy, fold_policy)
    else:
        # Without a schedule it is unknown whether a policy applies; its values still count.
        found.check(read_policy, gap_policy, fold_policy)
    found.raise_found()
    assert parsed is not None and policy is not None  # else a problem was raised just above
    return (*parsed, policy)


def next_runs(
    expression: str,
    timezone: str,
    after: datetime,
    count: int,
    *,
    gap_policy: str | None = None,
    fold_policy: str | None = None,
) -> list[datetime]:
    """Return the next ``count`` runs of a cron expression as aware UTC datetimes.

    ``gap_policy`` and ``fold_policy`` are a fixed-time job's ``SHIFT``/``SKIP`` and
    ``FIRST``/``SECOND`` (None: the default, classic cron's). Fewer than ``count`` runs
    come back only when the schedule has no more within the search's reach (400 years),
    which can happen only when gap policy SKIP drops every time it has.
    """
    if gap_policy is None and fold_policy is None:
        # The defaults (nearly every job): no policy to read or check on this hot path.
        spec, zone = expression_spec(expression, timezone)
        return take_runs(spec, zone, after, count)
    spec, zone, policy = custom_spec(expression, timezone, gap_policy, fold_policy)
    return take_runs(spec, zone, after, count, policy)


def previous_run(
    expression: str,
    timezone: str,
    before: datetime,
    *,
    gap_policy: str | None = None,
    fold_policy: str | None = None,
) -> datetime | None:
    """Return the cron expression's last run strictly before ``before``, or None."""
    spec, zone, policy = custom_spec(expression, timezone, gap_policy, fold_policy)
    return find_previous(spec, zone, before, policy)
