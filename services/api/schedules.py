"""A job's schedule from its request: validated, rendered as cron, and its next run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.api.problems import invalid
from shared.scheduling import (
    ScheduleError,
    next_runs,
    preset_expression,
    preset_next_runs,
    validate_expression,
    validate_timezone,
)


def resolve_schedule(
    *, frequency: str, time_config: dict[str, Any], schedule: str | None, now: datetime
) -> tuple[str, datetime]:
    """Return the cron expression and the next run after `now`, or raise a 422 problem."""
    # What is validated is what is stored: an empty zone is refused, not read as UTC.
    timezone = time_config.get("timezone", "UTC")
    try:
        validate_timezone(timezone)
        if frequency == "CUSTOM":
            if not schedule:
                raise ScheduleError("schedule required for CUSTOM", field="schedule")
            validate_expression(schedule)
            expression = " ".join(schedule.split())
            upcoming = next_runs(expression, timezone, now, 1)
        else:
            expression = preset_expression(frequency, time_config)
            upcoming = preset_next_runs(frequency, time_config, now, 1)
    except ScheduleError as exc:
        raise invalid(field_of(exc, frequency), exc.message) from None
    return expression, upcoming[0]


def field_of(exc: ScheduleError, frequency: str) -> str:
    """Name the request field at fault: cron fields belong to `schedule` for CUSTOM jobs."""
    if exc.field == "timezone":
        return "timeConfig.timezone"
    if frequency == "CUSTOM":
        return "schedule"
    return f"timeConfig.{exc.field}" if exc.field else "timeConfig"
