"""Describe upcoming runs for people: local time, UTC and what a DST transition did."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.scheduling.cronexpr import CronSpec
from shared.scheduling.dst import DstPolicy
from shared.scheduling.engine import Note, check_count, custom_spec, iter_runs
from shared.scheduling.errors import ProblemCollector
from shared.scheduling.presets import preset_spec


def _clock(wall: datetime, reference: datetime) -> str:
    """Format a wall time, adding the date only when it differs from the run's date."""
    if wall.date() == reference.date():
        return wall.strftime("%H:%M")
    return wall.strftime("%Y-%m-%d %H:%M")


def _list(walls: tuple[datetime, ...], reference: datetime) -> str:
    return ", ".join(_clock(wall, reference) for wall in walls)


def _dropped(walls: tuple[datetime, ...]) -> str:
    """Say which wall times gap policy SKIP dropped: "02:30 does not exist on 2026-03-29"."""
    days = sorted({wall.date() for wall in walls})
    verb = "does not exist" if len(walls) == 1 else "do not exist"
    if len(days) == 1:
        times = ", ".join(wall.strftime("%H:%M") for wall in walls)
        return f"skipped: {times} {verb} on {days[0].isoformat()} (gapPolicy SKIP)"
    times = ", ".join(wall.strftime("%Y-%m-%d %H:%M") for wall in walls)
    return f"skipped: {times} {verb} (gapPolicy SKIP)"


def _describe_kind(note: Note, local: datetime) -> str | None:
    ran_at = local.strftime("%H:%M %Z")
    naive = local.replace(tzinfo=None)
    if note.kind == "dropped":
        return None
    if note.kind == "moved":
        return f"moved: {_list(note.walls, naive)} does not exist, ran at {ran_at}"
    if note.kind == "merged" and len(note.walls) == 1:
        return (
            f"merged: {_clock(note.walls[0], naive)} occurs twice, ran once at the first ({ran_at})"
        )
    if note.kind == "second":
        return (
            f"merged: {_clock(note.walls[0], naive)} occurs twice, ran once at the second "
            f"({ran_at}, foldPolicy SECOND)"
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


def describe_note(note: Note | None, local: datetime) -> str | None:
    """Return a one-line explanation of a DST note for the run at ``local``.

    Wall times that gap policy SKIP dropped before this run come first, dated:
    "skipped: 02:30 does not exist on 2026-03-29 (gapPolicy SKIP)".
    """
    if note is None:
        return None
    parts = [_dropped(note.dropped)] if note.dropped else []
    if (own := _describe_kind(note, local)) is not None:
        parts.append(own)
    return "; ".join(parts) or None


def _preview(
    spec: CronSpec, zone: ZoneInfo, policy: DstPolicy, after: datetime, count: int
) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for instant, note in iter_runs(spec, zone, after, policy):
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
    parse: Callable[[], tuple[CronSpec, ZoneInfo, DstPolicy]], count: int
) -> tuple[CronSpec, ZoneInfo, DstPolicy]:
    """Return what ``parse`` returns; a ScheduleError names its faults and the count's together."""
    found = ProblemCollector()
    parsed = found.check(parse)
    found.check(check_count, count)
    found.raise_found()
    assert parsed is not None  # else a problem was raised just above
    return parsed


def preview_runs(
    expression: str,
    timezone: str,
    after: datetime,
    count: int,
    *,
    gap_policy: str | None = None,
    fold_policy: str | None = None,
) -> list[dict[str, str | None]]:
    """Return the next runs of a cron expression as ``{"local", "utc", "note"}`` rows.

    ``local`` and ``utc`` are ISO 8601 strings; ``note`` explains a run that a DST
    transition moved or merged, or that follows a run gap policy SKIP dropped, and is
    None otherwise. The policies are as for ``next_runs``.
    """
    spec, zone, policy = _checked(
        lambda: custom_spec(expression, timezone, gap_policy, fold_policy), count
    )
    return _preview(spec, zone, policy, after, count)


def preview_preset_runs(
    frequency: str, time_config: Mapping[str, Any], after: datetime, count: int
) -> list[dict[str, str | None]]:
    """Return the next runs of a DAILY/WEEKLY/MONTHLY preset as preview rows."""
    spec, zone, policy = _checked(lambda: preset_spec(frequency, time_config), count)
    return _preview(spec, zone, policy, after, count)
