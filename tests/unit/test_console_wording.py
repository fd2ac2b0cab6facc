"""What the console says about schedules, instants, durations and recent runs."""

from __future__ import annotations

import pytest

from services.api.console import charts
from services.api.console.wording import describe_schedule, duration, in_zone


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
