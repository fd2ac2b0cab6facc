"""Resolve local wall times to UTC instants across DST gaps and folds."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from shared.scheduling.errors import ScheduleError

_ONE_SECOND = timedelta(seconds=1)


# Files of the time zone database that are not zones a person lives in: "Factory" (an
# unset zone, abbreviated "-00"), the system's "localtime" link. The `posix/` and `right/`
# trees (the latter counts leap seconds, which no clock here does) are never listed.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


@functools.lru_cache(maxsize=1024)
def _load(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def forget_zones() -> None:
    """Drop every zone loaded so far, so the next load reads the time-zone database again."""
    ZoneInfo.clear_cache()
    _load.cache_clear()
    _zone_names.cache_clear()


def load_zone(name: str | None) -> ZoneInfo:
    """Return the IANA zone for ``name`` (UTC when None), or raise ScheduleError."""
    if name is None:
        name = "UTC"
    if not isinstance(name, str) or name not in _zone_names():
        raise ScheduleError(f"unknown time zone {name!r}", "timezone")
    try:
        return _load(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}", "timezone") from exc


def validate_timezone(name: str | None) -> None:
    """Raise ScheduleError unless ``name`` is a known IANA time zone (None means UTC)."""
    load_zone(name)


def transition_instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """Return the naive UTC instant at which the offset changes around a gap or fold wall time.

    ``wall`` must be a naive wall time that is nonexistent or ambiguous in ``zone``.
    zoneinfo hides its transition table, so the instant is found by bisecting on
    whole seconds between the two readings of the wall time: the transition lies
    in ``(wall - larger offset, wall - smaller offset]``.
    """
    first = zone.utcoffset(wall)
    second = zone.utcoffset(wall.replace(fold=1))
    assert first is not None
    assert second is not None
    after_offset = second
    low = wall - max(first, second)
    high = wall - min(first, second)
    steps = int((high - low) / _ONE_SECOND)
    lo, hi = 0, steps
    # Invariant: low + lo has the old offset, low + hi has the new one.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probe = (low + mid * _ONE_SECOND).replace(tzinfo=UTC).astimezone(zone)
        if probe.utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return low + hi * _ONE_SECOND


def ceil_minute(moment: datetime) -> datetime:
    """Round up to a whole minute; only pre-1972 offsets with seconds ever need it."""
    if moment.second or moment.microsecond:
        return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment
