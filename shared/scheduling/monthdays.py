"""Resolve the day terms whose days depend on the month's calendar: L, LW, nW, nL and n#k.

A month's calendar is fixed by two numbers, its length (28-31) and the weekday of
its first day, so every month has one of 28 shapes.  A schedule using these terms
is compiled once into a next-matching-day table per shape, with both day fields
and the rule combining them folded in; the engine then finds a month's next day
with one index instead of evaluating the terms day by day.
"""

from __future__ import annotations

from dataclasses import dataclass

SATURDAY = 6
SUNDAY = 0
SHAPES = 28
_SHORTEST_MONTH = 28
# The most days each month has; February has 28 in common years.
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

DayTables = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class MonthDays:
    """Hold the calendar terms of the two day fields; weekdays count 0 = Sunday.

    ``nearest_weekday`` holds the ``n`` of each ``nW``, ``last_of`` the weekday of
    each ``nL`` and ``nth`` the ``(weekday, k)`` of each ``weekday#k``.
    """

    last_day: bool = False
    last_weekday: bool = False
    nearest_weekday: tuple[int, ...] = ()
    last_of: tuple[int, ...] = ()
    nth: tuple[tuple[int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.last_day or self.last_weekday or self.nearest_weekday or self.last_of or self.nth
        )


def combine(parts: list[MonthDays]) -> MonthDays:
    """Merge the terms found in the items of a list, as in ``1#1,3#3,L``."""
    return MonthDays(
        last_day=any(part.last_day for part in parts),
        last_weekday=any(part.last_weekday for part in parts),
        nearest_weekday=tuple(sorted({day for part in parts for day in part.nearest_weekday})),
        last_of=tuple(sorted({day for part in parts for day in part.last_of})),
        nth=tuple(sorted({pair for part in parts for pair in part.nth})),
    )


def shape_index(last: int, first_weekday: int) -> int:
    """Return the table index of a month ``last`` days long starting on ``first_weekday``."""
    return (last - _SHORTEST_MONTH) * 7 + first_weekday


def nearest_weekday(day: int, last: int, first_weekday: int) -> int:
    """Return the Monday-Friday nearest ``day`` without leaving the month, or 0 if no such day.

    A Saturday moves back to Friday and a Sunday on to Monday, unless that would
    cross the month's edge: the 1st on a Saturday moves on to Monday the 3rd, the
    last day on a Sunday back to Friday.  A day the month lacks (31W in April)
    has no run that month, as Quartz has it and as a plain 31 has in cron.
    """
    if day > last:
        return 0
    weekday = (first_weekday + day - 1) % 7
    if weekday == SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == SUNDAY:
        return day + 1 if day < last else day - 2
    return day


def _dom_days(terms: MonthDays, doms: tuple[int, ...], last: int, first_weekday: int) -> set[int]:
    days = {day for day in doms if day <= last}
    if terms.last_day:
        days.add(last)
    if terms.last_weekday:
        days.add(nearest_weekday(last, last, first_weekday))
    for day in terms.nearest_weekday:
        days.add(nearest_weekday(day, last, first_weekday))
    days.discard(0)
    return days


def _dow_days(terms: MonthDays, dows: tuple[int, ...], last: int, first_weekday: int) -> set[int]:
    days = set()
    for day in range(1, last + 1):
        weekday = (first_weekday + day - 1) % 7
        if (
            weekday in dows
            or (weekday in terms.last_of and day + 7 > last)
            or (weekday, (day + 6) // 7) in terms.nth
        ):
            days.add(day)
    return days


def day_tables(
    terms: MonthDays, doms: tuple[int, ...], dows: tuple[int, ...], *, either: bool
) -> DayTables:
    """Return, per month shape, the first matching day at or after each day (0: none left).

    ``doms`` and ``dows`` are the fields' plain values beside ``terms``; ``either``
    is cron's rule for two restricted day fields (a day matching one suffices),
    otherwise a day must match both.
    """
    tables = []
    for shape in range(SHAPES):
        last = _SHORTEST_MONTH + shape // 7
        first_weekday = shape % 7
        by_dom = _dom_days(terms, doms, last, first_weekday)
        by_dow = _dow_days(terms, dows, last, first_weekday)
        days = by_dom | by_dow if either else by_dom & by_dow
        table = [0] * (last + 1)
        upcoming = 0
        for day in range(last, 0, -1):
            if day in days:
                upcoming = day
            table[day] = upcoming
        tables.append(tuple(table))
    return tuple(tables)


def can_fire(tables: DayTables, months: tuple[int, ...]) -> bool:
    """Return whether any of ``months`` has a matching day in some year.

    Every month starts on every weekday in some year, leap Februaries included,
    so a shape that matches is one that occurs.
    """
    for month in months:
        for last in (28, 29) if month == 2 else (_LONGEST_MONTH[month],):
            for first_weekday in range(7):
                if tables[shape_index(last, first_weekday)][1]:
                    return True
    return False
