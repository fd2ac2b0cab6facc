"""The activity window (start, end]: what a scan counts."""

from __future__ import annotations

from datetime import datetime


def in_window(at: datetime, start: datetime | None, end: datetime) -> bool:
    """Return whether `at` lies in (start, end]; no start means from the beginning."""
    return (start is None or at > start) and at <= end
