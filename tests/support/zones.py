"""A time-zone database of a test's own, whose rules the test changes under running code.

A directory put first on zoneinfo's search path holds one zone, `Herald/Test`, a copy of a
real zone's TZif file from the tzdata package, and a `tzdata.zi` naming a version. `swap`
gives the zone another real zone's rules and the database a new version, as a tzdata
upgrade would. Every other zone still comes from the package (zoneinfo's fallback).
"""

from __future__ import annotations

import importlib.resources
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.dispatch import forget_rules

ZONE = "Herald/Test"


class OwnRules:
    """The test's own database in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def swap(self, like: str, *, version: str) -> None:
        """Give `Herald/Test` the rules of the real zone `like`, and the database `version`."""
        source = importlib.resources.files("tzdata") / "zoneinfo"
        for part in like.split("/"):
            source = source / part
        target = self.directory / ZONE
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: code reading the zone never sees half a file.
        aside = target.with_suffix(".new")
        aside.write_bytes(source.read_bytes())
        aside.replace(target)
        marker = self.directory / "tzdata.zi"
        aside = marker.with_suffix(".new")
        aside.write_text(f"# version {version}\n# a test's own database\n")
        aside.replace(marker)


@contextmanager
def own_rules(directory: Path, *, like: str, version: str) -> Iterator[OwnRules]:
    """Search `directory` first for zones while inside; zoneinfo's own path is put back."""
    rules = OwnRules(directory)
    rules.swap(like, version=version)
    before = list(zoneinfo.TZPATH)
    zoneinfo.reset_tzpath(to=[str(directory)])
    forget_rules()
    try:
        yield rules
    finally:
        zoneinfo.reset_tzpath(to=before)
        forget_rules()
