"""Parse five-field cron expressions into lookup tables the engine can jump through."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from shared.scheduling.errors import ProblemCollector, ScheduleError
from shared.scheduling.monthdays import DayTables, MonthDays, can_fire, combine, day_tables

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# February counts 29 days here: a date exists in some year if it exists in a leap year.
MAX_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Characters other crons give a meaning, and where (if anywhere) herald accepts them.
MARKER_HINTS = {
    "L": "'L' goes alone or in LW in day-of-month, or after a weekday in day-of-week (5L)",
    "W": "'W' goes after one day of the month (15W) or in LW",
    "#": "'#' goes between a weekday and a week 1-5 in day-of-week (1#2)",
    "?": "'?' is not supported; use '*'",
    "H": "'H' is not supported",
}
SUPPORTED_FIELDS = "minute hour day-of-month month day-of-week"
_NEAREST_WEEKDAY = re.compile(r"([0-9]+)W")
_LAST_OF_WEEKDAY = re.compile(r"([0-9A-Z]+)L")
_NTH_WEEKDAY = re.compile(r"([0-9A-Z]+)#(.*)")

# How the two day fields combine; chosen once at parse time so the hot loop branches cheaply.
DAYS_ANY = 0
DAYS_DOM = 1
DAYS_DOW = 2
DAYS_AND = 3
DAYS_OR = 4
DAYS_CLAMP = 5
DAYS_CALENDAR = 6


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES, 1),
    _Field("day-of-week", 0, 7, DAY_NAMES, 0),
)


@dataclass(frozen=True, slots=True)
class CronSpec:
    """Hold a parsed schedule as sorted values plus next-value lookup tables.

    ``next_*`` tables map a value to the smallest allowed value at or above it,
    or -1 (0 for days) when none is left, with one extra slot past the field's
    maximum so carrying into the next unit needs no special case.  A schedule
    with calendar terms (L, LW, nW, nL, n#k) keeps them in ``month_days`` and
    its days in ``day_tables``, one next-day table per month shape.
    """

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    fixed_time: bool
    day_mode: int
    clamp_day: int
    next_minute: tuple[int, ...]
    next_hour: tuple[int, ...]
    next_dom: tuple[int, ...]
    next_month: tuple[int, ...]
    dom_ok: tuple[bool, ...]
    dow_ok: tuple[bool, ...]
    dow_delta: tuple[int, ...]
    month_days: MonthDays
    day_tables: DayTables


def _next_table(values: tuple[int, ...], size: int, missing: int) -> tuple[int, ...]:
    table = [missing] * (size + 1)
    upcoming = missing
    for value in range(size, -1, -1):
        if value in values:
            upcoming = value
        table[value] = upcoming
    return tuple(table)


def build_spec(
    expression: str,
    fields: tuple[tuple[int, ...], ...],
    *,
    fixed_time: bool,
    dom_star: bool,
    dow_star: bool,
    clamp_day: int = 0,
    month_days: MonthDays | None = None,
) -> CronSpec:
    """Build the lookup tables for already validated field values."""
    minutes, hours, doms, months, dows = fields
    dom_full = len(doms) == 31
    dow_full = len(dows) == 7
    month_days = month_days or MonthDays()
    tables: DayTables = ()
    if month_days:
        day_mode = DAYS_CALENDAR
        tables = day_tables(month_days, doms, dows, either=not (dom_star or dow_star))
    elif clamp_day:
        day_mode = DAYS_CLAMP
    elif dom_star or dow_star:
        if dom_full and dow_full:
            day_mode = DAYS_ANY
        elif dow_full:
            day_mode = DAYS_DOM
        elif dom_full:
            day_mode = DAYS_DOW
        else:
            day_mode = DAYS_AND
    else:
        day_mode = DAYS_ANY if dom_full or dow_full else DAYS_OR
    dow_delta = []
    for weekday in range(7):
        delta = next(k for k in range(8) if k == 7 or (weekday + k) % 7 in dows)
        dow_delta.append(delta)
    return CronSpec(
        expression=expression,
        minutes=minutes,
        hours=hours,
        days_of_month=doms,
        months=months,
        days_of_week=dows,
        fixed_time=fixed_time,
        day_mode=day_mode,
        clamp_day=clamp_day,
        next_minute=_next_table(minutes, 60, -1),
        next_hour=_next_table(hours, 24, -1),
        next_dom=_next_table(doms, 32, 0),
        next_month=_next_table(months, 13, -1),
        dom_ok=tuple(day in doms for day in range(32)),
        dow_ok=tuple(day in dows for day in range(7)),
        dow_delta=tuple(dow_delta),
        month_days=month_days,
        day_tables=tables,
    )


def _number(field: _Field, token: str) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
    elif field.names and token.upper() in field.names:
        return field.names.index(token.upper()) + field.name_base
    else:
        _refuse_markers(field, token)
        if token == "":
            raise ScheduleError(f"{field.name} has an empty value", field.name)
        raise ScheduleError(f"{field.name} {token!r} is not a number", field.name)
    if not field.low <= value <= field.high:
        raise ScheduleError(
            f"{field.name} {value} out of range {field.low}-{field.high}", field.name
        )
    return value


def _refuse_markers(field: _Field, token: str) -> None:
    """Refuse a token using another cron's special character, saying where herald takes it."""
    upper = token.upper()
    for name in field.names:
        # "WED" and "THU" hold W and H but are plain weekday names.
        upper = upper.replace(name, "")
    for marker, hint in MARKER_HINTS.items():
        if marker in upper:
            raise ScheduleError(f"{field.name} {token!r}: {hint}", field.name)


def _calendar_term(field: _Field, term: str) -> MonthDays | None:
    """Read an L, LW, nW (day-of-month) or nL, n#k (day-of-week) term; None for others."""
    upper = term.upper()
    if field.name == "day-of-month":
        if upper in ("L", "LW"):
            return MonthDays(last_day=upper == "L", last_weekday=upper == "LW")
        if nearest := _NEAREST_WEEKDAY.fullmatch(upper):
            return MonthDays(nearest_weekday=(_number(field, nearest.group(1)),))
    elif field.name == "day-of-week":
        if last := _LAST_OF_WEEKDAY.fullmatch(upper):
            return MonthDays(last_of=(_number(field, last.group(1)) % 7,))
        if nth := _NTH_WEEKDAY.fullmatch(upper):
            weekday = _number(field, nth.group(1)) % 7
            week = nth.group(2)
            if not (week.isascii() and week.isdigit() and 1 <= int(week) <= 5):
                raise ScheduleError(
                    f"{field.name} {term!r}: the week after '#' must be 1-5", field.name
                )
            return MonthDays(nth=((weekday, int(week)),))
    else:
        return None
    # A calendar character anywhere else (a range, a step) is refused with the whole term.
    _refuse_markers(field, term)
    return None


def _term(field: _Field, term: str) -> range:
    base, slash, step_text = term.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()):
            raise ScheduleError(f"{field.name} step {step_text!r} is not a number", field.name)
        span = field.high - field.low + 1
        step = int(step_text) if len(step_text) <= 3 else span + 1
        if not 1 <= step <= span:
            raise ScheduleError(f"{field.name} step {step_text} out of range 1-{span}", field.name)
    if base == "*":
        return range(field.low, field.high + 1, step)
    first_text, dash, last_text = base.partition("-")
    if not dash:
        if slash:
            # Vixie cron rejects "10/15"; some other crons read it as "10-max/15".
            raise ScheduleError(
                f"{field.name} step {term!r} needs a range or '*' before '/'", field.name
            )
        value = _number(field, base)
        return range(value, value + 1)
    if first_text == "" or last_text == "":
        raise ScheduleError(f"{field.name} range {base!r} is incomplete", field.name)
    first = _number(field, first_text)
    last = _number(field, last_text)
    if first > last:
        raise ScheduleError(f"{field.name} range {base} is descending", field.name)
    return range(first, last + 1, step)


def _parse_field(field: _Field, text: str) -> tuple[tuple[int, ...], MonthDays]:
    values: set[int] = set()
    calendar: list[MonthDays] = []
    for term in text.split(","):
        if term == "":
            raise ScheduleError(f"{field.name} has an empty list item", field.name)
        found = _calendar_term(field, term)
        if found is not None:
            calendar.append(found)
        else:
            values.update(_term(field, term))
    if field.name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values)), combine(calendar)


def _can_fire(doms: tuple[int, ...], months: tuple[int, ...]) -> bool:
    return any(doms[0] <= MAX_DAYS_IN_MONTH[month] for month in months)


@functools.lru_cache(maxsize=4096)
def parse_expression(expression: str) -> CronSpec:
    """Parse a cron expression or macro, raising ScheduleError on anything cron rejects."""
    if not isinstance(expression, str):
        raise ScheduleError("schedule must be a string", "schedule")
    text = expression.strip()
    if text.startswith("@"):
        text = _expand_macro(text)
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(_field_count_message(len(parts)), "schedule")
    # Each field is judged on its own, so one error names every field at fault.
    found = ProblemCollector()
    parsed = [
        found.check(_parse_field, field, part) for field, part in zip(_FIELDS, parts, strict=True)
    ]
    found.raise_found()
    checked = [result for result in parsed if result is not None]
    fields = tuple(values for values, _calendar in checked)
    month_days = combine([calendar for _values, calendar in checked])
    normalized = " ".join(parts)
    dom_star = parts[2].startswith("*")
    dow_star = parts[4].startswith("*")
    # Only an AND of the day fields can rule out every date; OR always has a weekday to fall on.
    if not month_days and (dom_star or dow_star) and not _can_fire(fields[2], fields[3]):
        raise ScheduleError(f"{normalized} never fires", "schedule")
    spec = build_spec(
        normalized,
        fields,
        fixed_time=not parts[0].startswith("*") and not parts[1].startswith("*"),
        dom_star=dom_star,
        dow_star=dow_star,
        month_days=month_days,
    )
    # Calendar terms can rule out every date either way (30W in February, 1W and 1#5).
    if month_days and not can_fire(spec.day_tables, spec.months):
        raise ScheduleError(f"{normalized} never fires", "schedule")
    return spec


def _expand_macro(text: str) -> str:
    expanded = MACROS.get(text.lower())
    if expanded is not None:
        return expanded
    known = ", ".join(MACROS)
    if text.lower() == "@reboot":
        raise ScheduleError(
            f"@reboot is not supported: herald runs jobs on the clock, not at start-up; "
            f"use a 5-field expression or one of {known}",
            "schedule",
        )
    raise ScheduleError(f"unknown macro {text!r}; herald knows {known}", "schedule")


def _field_count_message(count: int) -> str:
    message = f"expected 5 fields ({SUPPORTED_FIELDS}), got {count}"
    if count in (6, 7):
        # Quartz and Spring put seconds first (and years last), croniter seconds last.
        message += "; a seconds or year field is not supported: herald schedules to the minute"
    return message


def validate_expression(expression: str) -> None:
    """Raise ScheduleError if the expression is not a valid five-field cron schedule."""
    parse_expression(expression)
