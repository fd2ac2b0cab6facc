"""Describe upcoming runs for people: local time, UTC and what a DST transition did."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.scheduling.cronexpr import CronSpec
from shared.scheduling.engine import Note, check_count, expression_spec, iter_runs
from shared.scheduling.errors import ProblemCollector
from shared.scheduling.presets import preset_spec


def _clock(wall: datetime, reference: datetime) -> str:
    """Format a wall time, adding the date only when it differs from the run's date."""
    if wall.date() == reference.date():
        return wall.strftime("%H:%M")
    return wall.strftime("%Y-%m-%d %H:%M")


def _list(walls: tuple[datetime, ...], reference: datetime) -> str:
    return ", ".join(_clock(wall, reference) for wall in walls)


def describe_note(note: Note | None, local: datetime) -> str | None:
    """Return a one-line explanation of a DST note for the run at ``local``."""
    if note is None:
        return None
    ran_at = local.strftime("%H:%M %Z")
    naive = local.replace(tzinfo=None)
    if note.kind == "moved":
        return f"moved: {_list(note.walls, naive)} does not exist, ran at {ran_at}"
    if note.kind == "merged" and len(note.walls) == 1:
        return (
            f"merged: {_clock(note.walls[0], naive)} occurs twice, ran once at the first ({ran_at})"
        )
    if note.kind == "merged":
        missing = tuple(wall for wall in note.walls if wall != naive)
        return f"merged: {_list(missing, naive)} do not exist, ran once at {ran_at}"
    if note.kind == "repeat-first":
        return (
            f"repeated: {_clock(note.walls[0], naive)} occurs twice, this is the first ({ran_at})"
        )
    if note.kind == "repeat-second":
        return (
            f"repeated: {_clock(note.walls[0], naive)} occurs twice, this is the second ({ran_at})"
        )
    return f"skipped: {_list(note.walls, naive)} do not exist"


def _preview(
    spec: CronSpec, zone: ZoneInfo, after: datetime, count: int
) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for instant, note in iter_runs(spec, zone, after):
        local = instant.astimezone(zone)
        rows.append(
            {
                "local": local.isoformat(),
                "utc": instant.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "note": describe_note(note, local),
            }
        )
        if len(rows) == count:
            break
    return rows


def _checked(
    parse: Callable[[], tuple[CronSpec, ZoneInfo]], count: int
) -> tuple[CronSpec, ZoneInfo]:
    """Return what ``parse`` returns; a ScheduleError names its faults and the count's together."""
    found = ProblemCollector()
    parsed = found.check(parse)
    found.check(check_count, count)
    found.raise_found()
    assert parsed is not None  # else a problem was raised just above
    return parsed


def preview_runs(
    expression: str, timezone: str, after: datetime, count: int
) -> list[dict[str, str | None]]:
    """Return the next runs of a cron expression as ``{"local", "utc", "note"}`` rows.

    ``local`` and ``utc`` are ISO 8601 strings; ``note`` explains a run that a DST
    transition moved or merged, and is None otherwise.
    """
    spec, zone = _checked(lambda: expression_spec(expression, timezone), count)
    return _preview(spec, zone, after, count)


def preview_preset_runs(
    frequency: str, time_config: Mapping[str, Any], after: datetime, count: int
) -> list[dict[str, str | None]]:
    """Return the next runs of a DAILY/WEEKLY/MONTHLY preset as preview rows."""
    spec, zone = _checked(lambda: preset_spec(frequency, time_config), count)
    return _preview(spec, zone, after, count)
