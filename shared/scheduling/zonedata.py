"""Where herald reads the time-zone database from, and which version of it that is.

By default zones come from the `tzdata` package pinned in constraints.txt and nowhere else,
so every process of one release computes the same next runs wherever it runs (a container,
a bare machine with its own /usr/share/zoneinfo, or none). `HERALD_TZPATH` names directories
of TZif files to read first instead (the system's, for an urgent rule change that the host
has and the pinned package has not yet): zoneinfo still falls back to the package for a zone
they lack.

A version is IANA's release name (`2026a`), read from the `# version` line of `tzdata.zi`,
which both the package and zic-built trees carry.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from shared.scheduling.zones import forget_zones

_VERSION_LINE = re.compile(r"#\s*version\s+(\S+)")
# IANA names releases by year and a letter (2024a, 2024b ...).
_IANA_VERSION = re.compile(r"(\d{4})([a-z]+)")


def search_path(tzpath: str) -> list[str]:
    """The directories an `HERALD_TZPATH` value names (os.pathsep-separated), in order."""
    return [directory for directory in tzpath.split(os.pathsep) if directory.strip()]


def use_zone_source(tzpath: str) -> None:
    """Read zones from `tzpath`'s directories, or from the tzdata package alone when empty.

    Zones loaded before are dropped: none computed under another source may stay cached.
    """
    zoneinfo.reset_tzpath(to=search_path(tzpath))  # raises ValueError for a relative one
    forget_zones()


def database_version(directories: Sequence[str] | None = None) -> str | None:
    """The version of the database zones are read from now, as on disk; None when unknown.

    `directories` defaults to zoneinfo's search path. The first of them with a `tzdata.zi`
    names the version; with none, the tzdata package does (zoneinfo's fallback). Read from
    the file, not `tzdata.IANA_VERSION`: a package replaced under a running process shows.
    """
    for directory in zoneinfo.TZPATH if directories is None else directories:
        version = _version_in(Path(directory) / "tzdata.zi")
        if version is not None:
            return version
    try:
        package = importlib.resources.files("tzdata") / "zoneinfo" / "tzdata.zi"
    except ModuleNotFoundError:
        return None
    return _version_in(Path(str(package)))


def _version_in(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8") as lines:
            first = lines.readline()
    except (OSError, UnicodeDecodeError):
        return None
    found = _VERSION_LINE.match(first)
    return found.group(1) if found else None


def is_newer(version: str, than: str | None) -> bool:
    """Whether next runs computed with `than` should be computed again with `version`.

    Only forward: during a rolling deployment a replica still on the older release must not
    move back what a newer one moved. A name that is not IANA's (a locally built database)
    counts as newer whenever it differs.
    """
    if than is None:
        return True
    if version == than:
        return False
    ours, theirs = _IANA_VERSION.fullmatch(version), _IANA_VERSION.fullmatch(than)
    if ours is None or theirs is None:
        return True
    return (int(ours[1]), len(ours[2]), ours[2]) > (int(theirs[1]), len(theirs[2]), theirs[2])
