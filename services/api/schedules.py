"""A job's schedule from its request: validated, rendered as cron, and its next run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.api.problems import invalid_fields
from shared.scheduling import (
    FOLD_FIELD,
    GAP_FIELD,
    ProblemCollector,
    ScheduleError,
    custom_spec,
    never_fires,
    next_runs,
    policy_of,
    preset_expression,
    preset_next_runs,
    validate_timezone,
)


def _expression(*, frequency: str, time_config: Mapping[str, Any], schedule: str | None) -> str:
    """Return the job's cron expression; a ScheduleError names every schedule field at fault.

    A DST policy (`timeConfig.gapPolicy`, `timeConfig.foldPolicy`) other than the default is
    refused on a schedule without a fixed local time (`shared.scheduling.dst`).
    """
    if frequency != "CUSTOM":
        return preset_expression(frequency, time_config)
    # What is validated is what is stored: an empty zone is refused, not read as UTC.
    timezone = time_config.get("timezone", "UTC")
    found = ProblemCollector()
    if schedule:
        found.check(
            custom_spec,
            schedule,
            timezone,
            time_config.get(GAP_FIELD),
            time_config.get(FOLD_FIELD),
        )
    else:
        found.add(ScheduleError("schedule required for CUSTOM", field="schedule"))
        found.check(validate_timezone, timezone)
        found.check(policy_of, time_config)
    found.raise_found()
    assert schedule  # else a problem was raised just above
    return " ".join(schedule.split())


def schedule_refusals(
    *, frequency: str, time_config: Mapping[str, Any], schedule: str | None
) -> list[dict[str, str]]:
    """Return a 422's `errors` entries for every schedule field at fault; none when valid."""
    try:
        _expression(frequency=frequency, time_config=time_config, schedule=schedule)
    except ScheduleError as exc:
        return refusals_of(exc, frequency)
    return []


def resolve_schedule(
    *, frequency: str, time_config: dict[str, Any], schedule: str | None, now: datetime
) -> tuple[str, datetime]:
    """Return the cron expression and the next run after `now`, or raise a 422 problem.

    The problem names every schedule field at fault, not only the first one found.
    """
    try:
        expression = _expression(frequency=frequency, time_config=time_config, schedule=schedule)
        if frequency == "CUSTOM":
            timezone = time_config.get("timezone", "UTC")
            upcoming = next_runs(
                expression,
                timezone,
                now,
                1,
                gap_policy=time_config.get(GAP_FIELD),
                fold_policy=time_config.get(FOLD_FIELD),
            )
            if not upcoming:  # gap policy SKIP dropped every time the expression names
                raise never_fires(expression, timezone)
        else:
            upcoming = preset_next_runs(frequency, time_config, now, 1)
    except ScheduleError as exc:
        raise invalid_fields(refusals_of(exc, frequency)) from None
    return expression, upcoming[0]


def refusals_of(exc: ScheduleError, frequency: str) -> list[dict[str, str]]:
    """Return a 422's `errors` entries for each problem of a ScheduleError."""
    return [
        {"field": field_of(problem, frequency), "message": problem.message}
        for problem in exc.problems
    ]


def field_of(exc: ScheduleError, frequency: str) -> str:
    """Name the request field at fault: cron fields belong to `schedule` for CUSTOM jobs."""
    if exc.field in ("timezone", GAP_FIELD, FOLD_FIELD):
        return f"timeConfig.{exc.field}"
    if exc.field in ("frequency", "timeConfig"):
        return exc.field
    if frequency == "CUSTOM":
        return "schedule"
    return f"timeConfig.{exc.field}" if exc.field else "timeConfig"
