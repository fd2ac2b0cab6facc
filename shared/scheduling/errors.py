"""Errors raised for schedules that cannot be accepted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


class ScheduleError(ValueError):
    """Report an invalid cron expression, preset or time zone.

    The message names the offending field and the rule it breaks, in the form
    ``minute 60 out of range 0-59``; ``field`` carries the same field name so an
    API can point at it in a validation response. An error found in several fields
    at once lists each one in ``problems`` and joins their messages with "; ".
    """

    def __init__(
        self, message: str, field: str | None = None, problems: Sequence[ScheduleError] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self._problems = tuple(problems)

    @property
    def problems(self) -> tuple[ScheduleError, ...]:
        """Return one error per field rule broken: this error itself when it is a single one."""
        return self._problems or (self,)

    @classmethod
    def joined(cls, errors: Sequence[ScheduleError]) -> ScheduleError:
        """Return one error standing for all of ``errors`` (the error itself when only one)."""
        problems = [problem for error in errors for problem in error.problems]
        if len(problems) == 1:
            return problems[0]
        fields = {problem.field for problem in problems}
        return cls(
            "; ".join(problem.message for problem in problems),
            fields.pop() if len(fields) == 1 else None,
            problems,
        )

    def __reduce__(
        self,
    ) -> tuple[type[ScheduleError], tuple[str, str | None, tuple[ScheduleError, ...]]]:
        return (type(self), (self.message, self.field, self._problems))


class ProblemCollector:
    """Run independent checks, keeping every ScheduleError, so one error names them all."""

    def __init__(self) -> None:
        self._found: list[ScheduleError] = []

    def check(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T | None:
        """Return what ``function`` returns, or None after keeping the ScheduleError it raised."""
        try:
            return function(*args, **kwargs)
        except ScheduleError as exc:
            self._found.append(exc)
            return None

    def add(self, error: ScheduleError) -> None:
        self._found.append(error)

    def raise_found(self) -> None:
        """Raise one ScheduleError for every problem kept, if any was."""
        if self._found:
            self.fail()

    def fail(self) -> NoReturn:
        """Raise the problems kept; only for a caller that knows there is at least one."""
        assert self._found, "no problem was found"
        raise ScheduleError.joined(self._found)
