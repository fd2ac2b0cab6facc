"""Errors raised for schedules that cannot be accepted."""

from __future__ import annotations


class ScheduleError(ValueError):
    """Report an invalid cron expression, preset or time zone.

    The message names the offending field and the rule it breaks, in the form
    ``minute 60 out of range 0-59``; ``field`` carries the same field name so an
    API can point at it in a validation response.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __reduce__(self) -> tuple[type[ScheduleError], tuple[str, str | None]]:
        return (type(self), (self.message, self.field))
