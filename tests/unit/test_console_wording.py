"""What the console says about schedules, instants, durations and recent runs."""

from __future__ import annotations

import pytest

from services.api.console import charts
from services.api.console.wording import (
    actor_name,
    describe_dst,
    describe_schedule,
    duration,
    in_zone,
    job_clock,
    viewer_clock,
)


@pytest.mark.parametrize(
    ("job", "words"),
    [
        (
            {"frequency": "DAILY", "timeConfig": {"hour": 9, "minute": 5}},
            "Every day at 09:05 (UTC)",
        ),
        (
            {
                "frequency": "WEEKLY",
                "timeConfig": {"hour": 18, "minute": 0, "dayOfWeek": 0, "timezone": "Asia/Tokyo"},
            },
            "Every Sunday at 18:00 (Asia/Tokyo)",
        ),
        (
            {"frequency": "MONTHLY", "timeConfig": {"hour": 0, "minute": 0, "dayOfMonth": 31}},
            "On day 31 of every month at 00:00 (the last day in shorter months) (UTC)",
        ),
        ({"frequency": "CUSTOM", "schedule": "*/15 * * * *"}, "Every 15 minutes (UTC)"),
        ({"frequency": "CUSTOM", "schedule": "30 * * * *"}, "Every hour at minute 30 (UTC)"),
        (
            {"frequency": "CUSTOM", "schedule": "0 */6 * * *"},
            "Every 6 hours at minute 0 (UTC)",
        ),
        (
            {"frequency": "CUSTOM", "schedule": "30 8 * * 1-5"},
            "Every Monday to Friday at 08:30 (UTC)",
        ),
        (
            {"frequency": "CUSTOM", "schedule": "0 12 * * 5-7"},
            "Every Friday to Sunday at 12:00 (UTC)",
        ),
        (
            {"frequency": "CUSTOM", "schedule": "0 7 * * 1,3"},
            "Every Monday, Wednesday at 07:00 (UTC)",
        ),
        (
            {"frequency": "CUSTOM", "schedule": "15 3 1 * *"},
            "On day 1 of every month at 03:15 (UTC)",
        ),
        # What it cannot say simply, it shows as cron rather than guessing.
        ({"frequency": "CUSTOM", "schedule": "0 0 1 1 *"}, "cron 0 0 1 1 * (UTC)"),
        ({"frequency": "CUSTOM", "schedule": "0 0 * * */2"}, "cron 0 0 * * */2 (UTC)"),
        ({"frequency": "CUSTOM", "schedule": "0 0 13 * 5"}, "cron 0 0 13 * 5 (UTC)"),
    ],
)
def test_a_schedule_in_words(job: dict[str, object], words: str) -> None:
    assert describe_schedule(job) == words


def test_an_instant_in_a_zone_and_in_utc() -> None:
    assert in_zone("2026-03-29T01:30:00Z", "Europe/Paris") == "Sun 2026-03-29 03:30 CEST"
    assert in_zone("2026-03-29T01:30:00.250Z", "UTC") == "Sun 2026-03-29 01:30 UTC"
    assert in_zone(None, "UTC") == "—"
    assert in_zone("2026-01-01T00:00:00Z", "Not/AZone") == "Thu 2026-01-01 00:00 UTC"


def test_a_schedule_instant_is_said_in_the_jobs_own_zone_by_name() -> None:
    assert (
        job_clock("2026-12-07T08:00:00Z", "Europe/Berlin") == "Mon 2026-12-07 09:00 Europe/Berlin"
    )
    assert (
        job_clock("2026-07-06T07:00:00Z", "Europe/Berlin") == "Mon 2026-07-06 09:00 Europe/Berlin"
    )
    assert job_clock("2026-12-07T08:00:00Z", None) == "Mon 2026-12-07 08:00 UTC"
    assert job_clock(None, "Europe/Berlin") == "—"


@pytest.mark.parametrize(
    ("viewer", "words"),
    [
        # The report's case: a UTC viewer of a Berlin job sees both clocks, once each.
        ("UTC", "08:00 UTC"),
        ("America/New_York", "03:00 America/New_York"),
        # Another day for the viewer: the date is said too.
        ("Pacific/Honolulu", "Sun 2026-12-06 22:00 Pacific/Honolulu"),
        # The same clock (the job's own zone, or one that agrees at that instant): nothing more.
        ("Europe/Berlin", ""),
        ("Europe/Paris", ""),
    ],
)
def test_the_viewers_clock_is_added_only_when_it_reads_otherwise(viewer: str, words: str) -> None:
    assert viewer_clock("2026-12-07T08:00:00Z", "Europe/Berlin", viewer) == words


def test_a_utc_job_seen_from_utc_repeats_nothing() -> None:
    assert viewer_clock("2026-12-07T08:00:00Z", "UTC", "UTC") == ""
    assert viewer_clock("2026-12-07T08:00:00Z", "UTC", None) == ""
    assert viewer_clock(None, "UTC", "Europe/Berlin") == ""
    # Where the zones agree in winter but not in summer, summer says so.
    assert viewer_clock("2026-07-06T07:00:00Z", "Europe/London", "UTC") == "07:00 UTC"
    assert viewer_clock("2026-12-07T08:00:00Z", "Europe/London", "UTC") == ""


@pytest.mark.parametrize(
    ("millis", "text"),
    [(None, "—"), (0, "0 ms"), (850, "850 ms"), (4_240, "4.2 s"), (185_000, "3 min 05 s")],
)
def test_durations_read_at_a_glance(millis: int | None, text: str) -> None:
    assert duration(millis) == text


def test_the_chart_scales_bars_to_the_longest_run_oldest_first() -> None:
    newest_first = [
        {"status": "FAILED", "duration": None},
        {"status": "COMPLETED", "duration": 2000},
        {"status": "COMPLETED", "duration": 1000},
    ]
    bars = charts.duration_bars(newest_first)
    assert [bar.outcome for bar in bars] == ["completed", "completed", "failed"]
    assert [bar.height for bar in bars] == [charts.HEIGHT / 2, charts.HEIGHT, charts.MIN_BAR]
    assert all(bar.y + bar.height == charts.HEIGHT for bar in bars)
    # A first run is one bar of ten, not the whole width.
    assert bars[0].width < charts.WIDTH / 9
    assert bars[1].x > bars[0].x + bars[0].width
    assert charts.summary(bars) == (
        "Last 3 runs, oldest first: COMPLETED, 1.0 s; COMPLETED, 2.0 s; FAILED, —"
    )
    assert charts.duration_bars([]) == []
    assert charts.summary([]) == "No runs yet."


@pytest.mark.parametrize(
    ("job", "words"),
    [
        (
            {"frequency": "DAILY", "timeConfig": {"hour": 2, "minute": 30}},
            "Clocks forward: a time that does not exist runs at the first moment after the gap "
            "(gapPolicy SHIFT). Clocks back: a time that occurs twice runs once, at the first "
            "(foldPolicy FIRST).",
        ),
        (
            {
                "frequency": "CUSTOM",
                "schedule": "30 2 * * *",
                "timeConfig": {"gapPolicy": "SKIP", "foldPolicy": "SECOND"},
            },
            "Clocks forward: a time that does not exist is skipped that day (gapPolicy SKIP). "
            "Clocks back: a time that occurs twice runs once, at the second (foldPolicy SECOND).",
        ),
        (
            {"frequency": "CUSTOM", "schedule": "*/15 * * * *", "timeConfig": {}},
            "Follows elapsed time (its minute or hour field starts with *): a time that does "
            "not exist is left out, one that occurs twice runs both times.",
        ),
    ],
)
def test_what_daylight_saving_does_to_a_job(job: dict[str, object], words: str) -> None:
    assert describe_dst(job) == words


@pytest.mark.parametrize(
    ("actor", "words"),
    [
        ("usr_me", "you"),
        ("herald", "herald"),
        ("cli:alice", "alice (command line)"),
        ("cli", "the command line"),
        ("usr_someone_else", ""),
        (None, ""),
    ],
)
def test_who_took_a_step_in_a_posts_history(actor: str | None, words: str) -> None:
    assert actor_name(actor, "usr_me") == words
