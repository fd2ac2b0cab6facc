"""Which time-zone database herald reads, which version it is, and rules changing under it."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tzdata

from services.scheduler.slots import jittered, recomputed
from shared.dispatch import forget_rules, next_run_after
from shared.scheduling.zonedata import (
    database_version,
    is_newer,
    search_path,
    use_zone_source,
)
from shared.scheduling.zones import load_zone
from tests.support.zones import ZONE, own_rules

NOW = datetime(2033, 1, 10, 12, 0, tzinfo=UTC)


@dataclass
class Job:
    """A job as scheduling reads it (`shared.dispatch.ScheduledJob`)."""

    time_config: dict[str, Any]
    id: str = "cron_1"
    user_id: str = "usr_1"
    name: str = "digest"
    frequency: str = "DAILY"
    schedule: str = "0 9 * * *"
    jitter: int = 0
    max_retries: int = 3
    retry_delay: int = 300
    timeout_seconds: int = 900


def daily_nine(zone: str, *, jitter: int = 0) -> Job:
    return Job(time_config={"hour": 9, "minute": 0, "timezone": zone}, jitter=jitter)


def test_the_version_is_read_from_the_first_directory_that_names_one(tmp_path: Path) -> None:
    bare, named, later = tmp_path / "bare", tmp_path / "named", tmp_path / "later"
    for directory in (bare, named, later):
        directory.mkdir()
    (named / "tzdata.zi").write_text("# version 2031c\n# redo posix_only\nR x 1 2 -\n")
    (later / "tzdata.zi").write_text("# version 2099z\n")

    assert database_version([str(bare), str(named), str(later)]) == "2031c"


def test_without_a_named_directory_the_version_is_the_packages() -> None:
    assert database_version([]) == tzdata.IANA_VERSION


def test_a_file_without_a_version_line_names_none(tmp_path: Path) -> None:
    (tmp_path / "tzdata.zi").write_text("R x 1 2 -\n")

    assert database_version([str(tmp_path)]) == tzdata.IANA_VERSION


@pytest.mark.parametrize(
    ("version", "than", "newer"),
    [
        ("2026a", None, True),
        ("2026a", "2026a", False),
        ("2026b", "2026a", True),
        ("2026a", "2026b", False),
        ("2026a", "2025z", True),
        ("2025z", "2026a", False),
        ("2026aa", "2026z", True),
        ("local-build", "2026a", True),
    ],
)
def test_only_a_newer_version_moves_next_runs(version: str, than: str | None, newer: bool) -> None:
    assert is_newer(version, than) is newer


def test_the_search_path_setting_splits_on_the_path_separator() -> None:
    assert search_path("") == []
    assert search_path("/usr/share/zoneinfo:/opt/zones") == ["/usr/share/zoneinfo", "/opt/zones"]


def test_by_default_zones_come_from_the_package_alone() -> None:
    before = list(zoneinfo.TZPATH)
    try:
        use_zone_source("")
        assert zoneinfo.TZPATH == ()
        assert database_version() == tzdata.IANA_VERSION
        assert load_zone("Europe/Berlin").key == "Europe/Berlin"
        with pytest.raises(ValueError, match="absolute"):
            use_zone_source("relative/zones")
    finally:
        zoneinfo.reset_tzpath(to=before)
        forget_rules()


def test_cached_runs_are_dropped_with_the_rules_they_followed(tmp_path: Path) -> None:
    job = daily_nine(ZONE)
    with own_rules(tmp_path, like="Europe/Berlin", version="2098a") as rules:
        berlin = next_run_after(job, NOW)
        rules.swap("Asia/Tokyo", version="2099a")
        assert next_run_after(job, NOW) == berlin  # still cached: the old rules
        forget_rules()
        tokyo = next_run_after(job, NOW)
    assert berlin == datetime(2033, 1, 11, 8, 0, tzinfo=UTC)
    assert tokyo == datetime(2033, 1, 11, 0, 0, tzinfo=UTC)


def test_a_recomputed_next_run_is_the_first_slot_after_now_under_the_new_rules(
    tmp_path: Path,
) -> None:
    job = daily_nine(ZONE)
    stored_under_berlin = datetime(2033, 1, 11, 8, 0, tzinfo=UTC)
    with own_rules(tmp_path, like="Europe/Berlin", version="2098a") as rules:
        unchanged = recomputed(job, stored_under_berlin, now=NOW)
        rules.swap("Asia/Tokyo", version="2099a")
        forget_rules()
        moved = recomputed(job, stored_under_berlin, now=NOW)

    assert unchanged == stored_under_berlin
    assert moved == datetime(2033, 1, 11, 0, 0, tzinfo=UTC)


def test_a_slot_waiting_out_its_jitter_keeps_its_place() -> None:
    job = daily_nine("UTC", jitter=1800)
    slot = datetime(2033, 1, 10, 9, 0, tzinfo=UTC)
    stored = jittered(job, slot)
    now = slot + (stored - slot) / 2  # the slot passed, its jitter not yet

    assert stored - slot > timedelta(seconds=2)
    assert recomputed(job, stored, now=now) == stored
