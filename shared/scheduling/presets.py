"""Turn the REST API's DAILY / WEEKLY / MONTHLY presets into schedules."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.scheduling.cronexpr import CronSpec, build_spec
from shared.scheduling.dst import DEFAULT_POLICY, DstPolicy, policy_of
from shared.scheduling.engine import find_previous, take_runs
from shared.scheduling.errors import ProblemCollector, ScheduleError
from shared.scheduling.zones import load_zone

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY")
_ALL_DAYS_OF_MONTH = tuple(range(1, 32))
_ALL_MONTHS = tuple(range(1, 13))
_ALL_WEEKDAYS = tuple(range(7))


def _frequency(frequency: str) -> str:
    if not isinstance(frequency, str):
        raise ScheduleError(f"unknown frequency {frequency!r}", "frequency")
    upper = frequency.upper()
    if upper == "CUSTOM":
        raise ScheduleError(
            "frequency CUSTOM has no preset time; give a cron expression instead", "frequency"
        )
    if upper not in FREQUENCIES:
        raise ScheduleError(f"unknown frequency {frequency!r}", "frequency")
    return upper


def _integer(
    time_config: Mapping[str, Any], key: str, low: int, high: int, frequency: str | None
) -> int | None:
    value = time_config.get(key)
    if value is None:
        # Without a known frequency nothing is known to be required: only given values count.
        if frequency is None:
            return None
        raise ScheduleError(f"{key} required for {frequency}", key)
    # bool is an int subclass, but ``true`` is never a meaningful hour or day.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{key} must be an integer, got {value!r}", key)
    if not low <= value <= high:
        raise ScheduleError(f"{key} {value} out of range {low}-{high}", key)
    return value


# The day each preset adds to its hour and minute, with the day's range.
_DAY_FIELDS = {"WEEKLY": ("dayOfWeek", 0, 6), "MONTHLY": ("dayOfMonth", 1, 31)}


def _resolve(
    frequency: str, time_config: Mapping[str, Any]
) -> tuple[str, tuple[int, ...], ZoneInfo, DstPolicy]:
    """Validate a preset, its zone and its DST policy; return its frequency, (minute, hour,
    day), zone and policy (a preset is always at a fixed local time, so any policy applies).

    Every field is checked, so the ScheduleError raised names each field at fault.
    """
    found = ProblemCollector()
    name = found.check(_frequency, frequency)
    if not isinstance(time_config, Mapping):
        found.add(ScheduleError("timeConfig must be an object", "timeConfig"))
        found.fail()
    hour = found.check(_integer, time_config, "hour", 0, 23, name)
    minute = found.check(_integer, time_config, "minute", 0, 59, name)
    day: int | None = None
    if name in _DAY_FIELDS:
        key, low, high = _DAY_FIELDS[name]
        day = found.check(_integer, time_config, key, low, high, name)
    zone = found.check(load_zone, time_config.get("timezone"))
    policy = DEFAULT_POLICY
    if "gapPolicy" in time_config or "foldPolicy" in time_config:
        policy = found.check(policy_of, time_config) or DEFAULT_POLICY
    found.raise_found()
    # Each one is present: its absence was a problem, raised just above.
    assert name is not None and hour is not None and minute is not None and zone is not None
    return name, (minute, hour) if day is None else (minute, hour, day), zone, policy


def validate_preset(frequency: str, time_config: Mapping[str, Any]) -> None:
    """Raise ScheduleError, naming every field at fault, unless the preset and zone are valid."""
    _resolve(frequency, time_config)


def preset_expression(frequency: str, time_config: Mapping[str, Any]) -> str:
    """Return the cron expression a preset stands for, for display."""
    name, numbers, _, _ = _resolve(frequency, time_config)
    if name == "DAILY":
        return f"{numbers[0]} {numbers[1]} * * *"
    if name == "WEEKLY":
        return f"{numbers[0]} {numbers[1]} * * {numbers[2]}"
    return f"{numbers[0]} {numbers[1]} {numbers[2]} * *"


@functools.lru_cache(maxsize=4096)
def _preset_spec(name: str, numbers: tuple[int, ...]) -> CronSpec:
    minute, hour = numbers[0], numbers[1]
    days_of_month = _ALL_DAYS_OF_MONTH
    days_of_week = _ALL_WEEKDAYS
    clamp = 0
    if name == "WEEKLY":
        days_of_week = (numbers[2],)
        expression = f"{minute} {hour} * * {numbers[2]}"
    elif name == "MONTHLY":
        # Unlike cron's "31", a monthly preset on the 29th-31st runs every month,
        # on the month's last day when the month is shorter.
        days_of_month = (numbers[2],)
        clamp = numbers[2]
        expression = f"{minute} {hour} {numbers[2]} * *"
    else:
        expression = f"{minute} {hour} * * *"
    return build_spec(
        expression,
        ((minute,), (hour,), days_of_month, _ALL_MONTHS, days_of_week),
        fixed_time=True,
        dom_star=name != "MONTHLY",
        dow_star=True,
        clamp_day=clamp,
    )


def preset_spec(
    frequency: str, time_config: Mapping[str, Any]
) -> tuple[CronSpec, ZoneInfo, DstPolicy]:
    """Validate a preset and return its parsed schedule, zone and DST policy.

    The policy is ``timeConfig.gapPolicy`` and ``timeConfig.foldPolicy`` (absent: the
    defaults, SHIFT and FIRST).
    """
    name, numbers, zone, policy = _resolve(frequency, time_config)
    return _preset_spec(name, numbers), zone, policy


def preset_next_runs(
    frequency: str, time_config: Mapping[str, Any], after: datetime, count: int
) -> list[datetime]:
    """Return the next ``count`` runs of a DAILY, WEEKLY or MONTHLY preset in UTC."""
    spec, zone, policy = preset_spec(frequency, time_config)
    return take_runs(spec, zone, after, count, policy)


def preset_previous_run(
    frequency: str, time_config: Mapping[str, Any], before: datetime
) -> datetime | None:
    """Return the preset's last run strictly before ``before``, or None."""
    spec, zone, policy = preset_spec(frequency, time_config)
    return find_previous(spec, zone, before, policy)
