"""What the pages say: schedules in words, instants in a zone, durations. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.scheduling import fixed_local_time

WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _clock(hour: object, minute: object) -> str:
    return f"{int(str(hour)):02d}:{int(str(minute)):02d}"


def _weekdays(field: str) -> str | None:
    """Name the days of a day-of-week field made of numbers, lists and ranges; else None."""
    names = (*WEEKDAYS, "Sunday")  # cron reads 7 as Sunday too
    parts: list[str] = []
    for part in field.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or int(low) > 7 or (high and not (high.isdigit() and int(high) <= 7)):
            return None
        parts.append(f"{names[int(low)]} to {names[int(high)]}" if high else names[int(low)])
    return ", ".join(parts)


def _custom(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 5:
        return f"cron {expression}"
    minute, hour, day, month, weekday = fields
    if fields == ["*"] * 5:
        return "Every minute"
    if month != "*":
        return f"cron {expression}"
    if minute.startswith("*/") and (hour, day, weekday) == ("*", "*", "*"):
        return f"Every {minute[2:]} minutes"
    if minute.isdigit() and hour == "*" and (day, weekday) == ("*", "*"):
        return f"Every hour at minute {int(minute)}"
    if minute.isdigit() and hour.startswith("*/") and (day, weekday) == ("*", "*"):
        return f"Every {hour[2:]} hours at minute {int(minute)}"
    if not (minute.isdigit() and hour.isdigit()):
        return f"cron {expression}"
    at = _clock(hour, minute)
    if (day, weekday) == ("*", "*"):
        return f"Every day at {at}"
    if day == "*" and (days := _weekdays(weekday)):
        return f"Every {days} at {at}"
    if weekday == "*" and day.isdigit():
        return f"On day {int(day)} of every month at {at}"
    return f"cron {expression}"


def describe_schedule(job: Mapping[str, Any]) -> str:
    """Say when a job runs, in its own zone: "Every Monday at 09:00 (Europe/Paris)"."""
    config = job.get("timeConfig") or {}
    zone = config.get("timezone") or "UTC"
    frequency = job.get("frequency")
    try:
        if frequency == "DAILY":
            words = f"Every day at {_clock(config['hour'], config['minute'])}"
        elif frequency == "WEEKLY":
            day = WEEKDAYS[int(config["dayOfWeek"]) % 7]
            words = f"Every {day} at {_clock(config['hour'], config['minute'])}"
        elif frequency == "MONTHLY":
            day_of_month = int(config["dayOfMonth"])
            at = _clock(config["hour"], config["minute"])
            words = f"On day {day_of_month} of every month at {at}"
            if day_of_month > 28:
                words += " (the last day in shorter months)"
        else:
            words = _custom(str(job.get("schedule") or ""))
    except (KeyError, TypeError, ValueError):
        words = f"cron {job.get('schedule')}"
    return f"{words} ({zone})"


def describe_dst(job: Mapping[str, Any]) -> str:
    """Say what daylight saving does to a job: its policies, or why it has none."""
    config = job.get("timeConfig") or {}
    fixed = fixed_local_time(job.get("frequency"), job.get("schedule"))
    if fixed is False:
        return (
            "Follows elapsed time (its minute or hour field starts with *): a time that does "
            "not exist is left out, one that occurs twice runs both times."
        )
    gap = config.get("gapPolicy") or "SHIFT"
    fold = config.get("foldPolicy") or "FIRST"
    forward = "is skipped that day" if gap == "SKIP" else "runs at the first moment after the gap"
    back = "the second" if fold == "SECOND" else "the first"
    return (
        f"Clocks forward: a time that does not exist {forward} (gapPolicy {gap}). "
        f"Clocks back: a time that occurs twice runs once, at {back} (foldPolicy {fold})."
    )


def zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_instant(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def in_zone(value: str | None, zone: str | None) -> str:
    """Render an API instant in a zone, e.g. "Mon 2026-03-09 10:00 CET"; "—" when unset."""
    instant = parse_instant(value)
    if instant is None:
        return "—"
    return instant.astimezone(zone_or_utc(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def job_clock(value: str | None, job_zone: str | None) -> str:
    """Render an instant in a job's own zone, named: "Mon 2026-12-07 09:00 Europe/Berlin"."""
    instant = parse_instant(value)
    if instant is None:
        return "—"
    zone = zone_or_utc(job_zone)
    return f"{instant.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}"


def viewer_clock(value: str | None, job_zone: str | None, viewer_zone: str | None) -> str:
    """The viewer's clock at an instant, when it reads otherwise than the job's; else "".

    "08:00 UTC" on the job's day, "Sun 2026-12-06 23:00 America/New_York" on another. Zones
    whose clocks agree at that instant (Europe/Paris for a Europe/Berlin job) say nothing more.
    """
    instant = parse_instant(value)
    if instant is None:
        return ""
    job_time = instant.astimezone(zone_or_utc(job_zone))
    viewer = zone_or_utc(viewer_zone)
    viewer_time = instant.astimezone(viewer)
    if viewer_time.utcoffset() == job_time.utcoffset():
        return ""
    if viewer_time.date() == job_time.date():
        return f"{viewer_time:%H:%M} {viewer.key}"
    return f"{viewer_time:%a %Y-%m-%d %H:%M} {viewer.key}"


def duration(millis: int | None) -> str:
    """Write a duration people read at a glance: "850 ms", "4.2 s", "3 min 05 s"."""
    if millis is None:
        return "—"
    if millis < 1000:
        return f"{millis} ms"
    if millis < 60_000:
        return f"{millis / 1000:.1f} s"
    minutes, seconds = divmod(round(millis / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


# What each job type does, as the job form offers it; the types a job may be created with.
JOB_TYPES = {
    "GENERATE_CONTENT": (
        "Write posts",
        "Scans the window's activity and writes a post for each of the project's platforms.",
    ),
    "SYNC_GITHUB": (
        "Sync activity",
        "Scans the window and records its commits, merged pull requests and closed issues; "
        "writes nothing, uses no AI.",
    ),
    "ANALYTICS": (
        "Activity digest",
        "Sends you a digest of the window's activity and of the project's jobs' runs, "
        "in-app and by email, with a chart.",
    ),
    "WEBHOOK": (
        "Write posts and deliver them to a webhook",
        "Writes the posts, then POSTs them with the window's activity, signed, to a URL you "
        "give below.",
    ),
    "PUBLISH_CONTENT": (
        "Publish approved posts",
        "Publishes the project's approved posts when it runs (after a generate job: that "
        "run's approved posts).",
    ),
}


def job_type_name(job_type: str | None) -> str:
    """The type's name in the console's words (an unknown one as the API spells it)."""
    return JOB_TYPES.get(job_type or "GENERATE_CONTENT", (job_type or "", ""))[0]


def actor_name(actor: str | None, me: str | None) -> str:
    """Who took a step in a post's history, as the viewer reads it; empty for an actor the
    console has no name for (another user's id says nothing to this viewer)."""
    if actor is None:
        return ""
    if actor == me:
        return "you"
    if actor == "herald":
        return "herald"
    # `herald posts` records the operating-system user it ran as, not the owner it acted for.
    if actor == "cli":
        return "the command line"
    if actor.startswith("cli:"):
        return f"{actor.removeprefix('cli:')} (command line)"
    return ""
