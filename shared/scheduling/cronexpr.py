"""Parse five-field cron expressions into lookup tables the engine can jump through."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared.scheduling.errors import ProblemCollector, ScheduleError

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
UNSUPPORTED = ("L", "W", "#", "?", "H")

# How the two day fields combine; chosen once at parse time so the hot loop branches cheaply.
DAYS_ANY = 0
DAYS_DOM = 1
DAYS_DOW = 2
DAYS_AND = 3
DAYS_OR = 4
DAYS_CLAMP = 5


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
    maximum so carrying into the next unit needs no special case.
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
) -> CronSpec:
    """Build the lookup tables for already validated field values."""
    minutes, hours, doms, months, dows = fields
    dom_full = len(doms) == 31
    dow_full = len(dows) == 7
    if clamp_day:
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
    )


def _number(field: _Field, token: str) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
    elif field.names and token.upper() in field.names:
        return field.names.index(token.upper()) + field.name_base
    else:
        upper = token.upper()
        for marker in UNSUPPORTED:
            if marker in upper:
                raise ScheduleError(
                    f"{field.name} {token!r}: {marker!r} is not supported", field.name
                )
        if token == "":
            raise ScheduleError(f"{field.name} has an empty value", field.name)
        raise ScheduleError(f"{field.name} {token!r} is not a number", field.name)
    if not field.low <= value <= field.high:
        raise ScheduleError(
            f"{field.name} {value} out of range {field.low}-{field.high}", field.name
        )
    return value


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


def _parse_field(field: _Field, text: str) -> tuple[int, ...]:
    values: set[int] = set()
    for term in text.split(","):
        if term == "":
            raise ScheduleError(f"{field.name} has an empty list item", field.name)
        values.update(_term(field, term))
    if field.name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def _can_fire(doms: tuple[int, ...], months: tuple[int, ...]) -> bool:
    return any(doms[0] <= MAX_DAYS_IN_MONTH[month] for month in months)


@functools.lru_cache(maxsize=4096)
def parse_expression(expression: str) -> CronSpec:
    """Parse a cron expression or macro, raising ScheduleError on anything cron rejects."""
    if not isinstance(expression, str):
        raise ScheduleError("schedule must be a string", "schedule")
    text = expression.strip()
    if text.startswith("@"):
        expanded = MACROS.get(text.lower())
        if expanded is None:
            raise ScheduleError(f"unknown macro {text!r}", "schedule")
        text = expanded
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(f"expected 5 fields, got {len(parts)}", "schedule")
    # Each field is judged on its own, so one error names every field at fault.
    found = ProblemCollector()
    parsed = [
        found.check(_parse_field, field, part) for field, part in zip(_FIELDS, parts, strict=True)
    ]
    found.raise_found()
    fields = tuple(values for values in parsed if values is not None)
    normalized = " ".join(parts)
    dom_star = parts[2].startswith("*")
    dow_star = parts[4].startswith("*")
    # Only an AND of the day fields can rule out every date; OR always has a weekday to fall on.
    if (dom_star or dow_star) and not _can_fire(fields[2], fields[3]):
        raise ScheduleError(f"{normalized} never fires", "schedule")
    return build_spec(
        normalized,
        fields,
        fixed_time=not parts[0].startswith("*") and not parts[1].startswith("*"),
        dom_star=dom_star,
        dow_star=dow_star,
    )


def validate_expression(expression: str) -> None:
    """Raise ScheduleError if the expression is not a valid five-field cron schedule."""
    parse_expression(expression)
