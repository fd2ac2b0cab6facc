"""The error hierarchy: what may be retried, and what never will succeed."""

from __future__ import annotations


class HeraldError(Exception):
    """Base of every error herald raises on purpose."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class PermanentError(HeraldError):
    """The step failed and trying again cannot help."""


class TransientError(HeraldError):
    """The step failed for a reason that may pass; it may be retried."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExhaustedError(TransientError):
    """A budget the fleet shares is spent until a known time; waiting for it is no failure."""

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after: float = retry_after


class InvalidEventError(PermanentError):
    """The message is not a valid event of a known version."""


class ConfigurationError(PermanentError):
    """The job or project is configured in a way that cannot run."""


class DependencyUnavailableError(TransientError):
    """A server the handler needs cannot be reached; the message should wait for it."""
