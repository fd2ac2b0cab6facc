"""The demo's setup: its zone, its repository root, and what the banner says of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.demo import Demo, banner_lines, local_zone, repos_root

BASE = "http://127.0.0.1:8000"


def test_the_repos_root_is_the_checkout_when_it_holds_the_demo_repository(tmp_path: Path) -> None:
    assert repos_root(tmp_path, tmp_path) == tmp_path
    assert repos_root(tmp_path, tmp_path / ".herald" / "demo-repo") == tmp_path
    elsewhere = tmp_path.parent / "data" / "demo-repo"
    assert repos_root(tmp_path, elsewhere) == elsewhere


@pytest.fixture
def zoneinfo_tree(tmp_path: Path) -> Path:
    """A stand-in for /usr/share/zoneinfo: paths only, as the zone is read from the link."""
    tree = tmp_path / "usr" / "share" / "zoneinfo"
    for name in ("Europe/Berlin", "posix/Asia/Tokyo", "Factory"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(b"TZif")
    return tree


def test_the_demo_takes_the_machines_zone_from_tz_then_the_localtime_link(
    tmp_path: Path, zoneinfo_tree: Path
) -> None:
    link = tmp_path / "localtime"
    link.symlink_to(zoneinfo_tree / "Europe" / "Berlin")
    missing = tmp_path / "no-timezone"

    assert local_zone({"TZ": "America/New_York"}, link, missing) == "America/New_York"
    assert local_zone({"TZ": ":Asia/Tokyo"}, link, missing) == "Asia/Tokyo"
    # A POSIX rule or an unknown name in TZ says no IANA zone: the link does.
    assert local_zone({"TZ": "CET-1CEST"}, link, missing) == "Europe/Berlin"
    assert local_zone({}, link, missing) == "Europe/Berlin"

    posix = tmp_path / "posix-localtime"
    posix.symlink_to(zoneinfo_tree / "posix" / "Asia" / "Tokyo")
    assert local_zone({}, posix, missing) == "Asia/Tokyo"


def test_without_a_zone_it_can_name_the_demo_runs_in_utc(
    tmp_path: Path, zoneinfo_tree: Path
) -> None:
    factory = tmp_path / "factory-localtime"
    factory.symlink_to(zoneinfo_tree / "Factory")  # a file of the database, not a zone
    named = tmp_path / "timezone"
    named.write_text("Europe/Lisbon\n")

    assert local_zone({}, tmp_path / "absent", tmp_path / "absent-too") == "UTC"
    assert local_zone({}, factory, tmp_path / "absent") == "UTC"
    assert local_zone({"TZ": "/etc/passwd"}, tmp_path / "absent", named) == "Europe/Lisbon"


def test_the_first_start_says_the_demo_run_has_started_and_where_to_watch_it() -> None:
    demo = Demo(token="hrld_t", jobs=("Daily digest", "Weekly digest"), first_run="exec_1")

    text = "\n".join(banner_lines(BASE, demo))

    assert "The demo's first run (Weekly digest, the last 7 days of commits) has started" in text
    assert f"{BASE}/console/executions/exec_1" in text
    assert f"curl -H 'Authorization: Bearer hrld_t' {BASE}/api/cron/executions/exec_1/content" in (
        text
    )
    assert "within a minute" not in text


def test_a_restart_says_what_exists_and_promises_no_run() -> None:
    demo = Demo(token="hrld_t", jobs=("Daily digest", "Weekly digest"), first_run=None)

    text = "\n".join(banner_lines(BASE, demo))

    assert "The demo's jobs (Daily digest, Weekly digest), their runs and posts" in text
    assert f"{BASE}/console/jobs" in text
    assert f"curl -H 'Authorization: Bearer hrld_t' {BASE}/api/cron/executions" in text
    assert "started" not in text
    assert "first run" not in text
