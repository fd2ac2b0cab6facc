"""An ANALYTICS run's digest: the window's activity, its chart, the jobs' figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api import digest
from services.api.digest import JobFigures
from services.notifier.alerts import digest_summary
from shared import digest_chart
from shared.events import ActivityItem, ActivitySummary, JobType
from shared.job_results import result_sentence

END = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
START = END - timedelta(days=7)


def item(kind: str, at: datetime, author: str | None = "ada", **fields: object) -> ActivityItem:
    return ActivityItem.model_validate(
        {"kind": kind, "title": f"{kind} at {at:%d %H}", "at": at, "author": author, **fields}
    )


def week() -> ActivitySummary:
    items = [
        *(item("commit", START + timedelta(days=1, hours=n)) for n in range(4)),
        item("commit", START + timedelta(days=3), "bob"),
        item("pull_request", START + timedelta(days=3, hours=2), "bob", number=7),
        item("issue", END, "cy", number=9),
        item("tag", START + timedelta(days=2), None),
    ]
    return ActivitySummary(
        commits=5,
        pull_requests=1,
        issues=1,
        tags=1,
        contributors=["ada", "bob", "cy"],
        items=items,
        notable=[items[5]],
        releases=["v1.2.0"],
    )


def figures(job_id: str, name: str, *, streak: int = 0, **by_status: int) -> JobFigures:
    timed = sum(by_status.get(status, 0) for status in ("COMPLETED", "FAILED", "TIMEOUT"))
    return JobFigures(
        job_id=job_id,
        name=name,
        type="GENERATE_CONTENT",
        by_status=by_status,
        missed=by_status.pop("MISSED", 0),
        duration_ms=timed * 2_000,
        timed_runs=timed,
        consecutive_failures=streak,
    )


def test_the_digest_counts_the_window_and_ranks_its_authors() -> None:
    built = digest.build(week(), window_start=START, window_end=END, jobs=[])

    assert (built.commits, built.pull_requests, built.issues, built.tags) == (5, 1, 1, 1)
    assert built.contributors == 3
    # Tags have no author worth ranking; ties go by name.
    assert [(a.name, a.items) for a in built.top_authors] == [("ada", 4), ("bob", 2), ("cy", 1)]
    assert [n.number for n in built.notable] == [7]
    assert built.releases == ["v1.2.0"]
    assert (built.items_seen, built.items_total) == (8, 8)


def test_a_week_is_charted_a_day_a_bar_and_an_item_at_the_end_is_in_the_last() -> None:
    built = digest.build(week(), window_start=START, window_end=END, jobs=[])

    assert built.bucket_seconds == 86_400
    assert len(built.timeline) == 7
    assert [bar.start for bar in built.timeline] == [START + timedelta(days=n) for n in range(7)]
    assert [(b.commits, b.pull_requests, b.issues) for b in built.timeline] == [
        (0, 0, 0),
        (4, 0, 0),
        (0, 0, 0),
        (1, 1, 0),
        (0, 0, 0),
        (0, 0, 0),
        (0, 0, 1),
    ]


@pytest.mark.parametrize(
    ("length", "span", "bars"),
    [
        (timedelta(hours=1), timedelta(hours=1), 1),
        (timedelta(days=1), timedelta(hours=1), 24),
        (timedelta(hours=40), timedelta(hours=6), 7),
        (timedelta(days=3), timedelta(hours=6), 12),
        (timedelta(days=7), timedelta(days=1), 7),
        (timedelta(days=31), timedelta(days=1), 31),
        (timedelta(days=92), timedelta(days=7), 14),
        (timedelta(days=400), timedelta(days=30), 14),
        (timedelta(days=3650), timedelta(days=365), 10),
    ],
)
def test_the_chart_span_is_the_shortest_that_fits_the_window(
    length: timedelta, span: timedelta, bars: int
) -> None:
    built = digest.build(ActivitySummary(), window_start=END - length, window_end=END, jobs=[])

    assert built.bucket_seconds == span.total_seconds()
    assert len(built.timeline) == bars <= digest.MAX_BARS


def test_a_window_without_a_start_opens_at_its_oldest_item() -> None:
    summary = week()

    built = digest.build(summary, window_start=None, window_end=END, jobs=[])

    assert built.window_start is None
    assert built.timeline[0].start == START + timedelta(days=1)
    empty = digest.build(ActivitySummary(), window_start=None, window_end=END, jobs=[])
    assert empty.timeline[0].start == END - digest.DEFAULT_WINDOW


def test_the_jobs_figures_add_up_and_the_busiest_come_first() -> None:
    jobs = [
        figures("cron_a", "quiet", COMPLETED=1),
        figures("cron_b", "busy", streak=2, COMPLETED=6, FAILED=1, TIMEOUT=1, SKIPPED=2),
        figures("cron_c", "idle"),
        figures("cron_d", "missing", MISSED=3, CANCELLED=1),
    ]

    built = digest.build(ActivitySummary(), window_start=START, window_end=END, jobs=jobs)

    assert [job.name for job in built.jobs] == ["busy", "missing", "quiet", "idle"]
    busy = built.jobs[0]
    assert (busy.runs, busy.succeeded, busy.failed, busy.skipped) == (8, 6, 2, 2)
    assert busy.success_rate == 75.0
    assert busy.average_duration == 2_000
    assert busy.consecutive_failures == 2
    assert busy.type == JobType.GENERATE_CONTENT
    idle = built.jobs[-1]
    assert (idle.runs, idle.success_rate, idle.average_duration) == (0, None, None)
    assert (built.runs, built.succeeded, built.failed) == (9, 7, 2)
    assert (built.skipped, built.missed, built.cancelled) == (2, 3, 1)
    assert built.success_rate == 77.8
    assert built.average_duration == 2_000


def test_a_project_with_many_jobs_lists_the_busiest_and_counts_them_all() -> None:
    jobs = [figures(f"cron_{n:02}", f"job {n:02}", COMPLETED=n) for n in range(40)]

    built = digest.build(ActivitySummary(), window_start=START, window_end=END, jobs=jobs)

    assert len(built.jobs) == digest.MAX_JOBS
    assert built.jobs[0].name == "job 39"
    assert built.runs == sum(range(40))


def test_the_chart_scales_to_the_busiest_span_and_keeps_every_kind_visible() -> None:
    summary = week()
    summary = summary.model_copy(
        update={"items": [*summary.items, *(item("commit", START + timedelta(days=1)),) * 36]}
    )
    built = digest.build(summary, window_start=START, window_end=END, jobs=[])

    columns = digest_chart.columns(built, 100)

    assert len(columns) == 7
    tallest = columns[1]
    assert tallest.total == 40 and tallest.gap == 0
    assert [(s.kind, s.height) for s in tallest.segments] == [("Commits", 100)]
    # One pull request beside 40 commits still shows: a pixel at least.
    mixed = columns[3]
    assert [(s.kind, s.count, s.height) for s in mixed.segments] == [
        ("Merged pull requests", 1, 2),
        ("Commits", 1, 2),
    ]
    assert mixed.gap == 96
    assert columns[0].segments == () and columns[0].gap == 100
    assert columns[0].description.endswith("no activity")
    assert [c.labelled for c in columns] == [True, False, True, False, True, False, True]
    assert columns[0].label == "Nov 30"
    lines = digest_chart.text_bars(built, width=10)
    assert lines[1] == "Dec 01  ########## 40"
    assert lines[0] == "Nov 30  0"


def test_the_summary_and_the_result_say_what_the_digest_holds() -> None:
    jobs = [figures("cron_b", "nightly", streak=3, COMPLETED=3, FAILED=1, SKIPPED=1)]
    built = digest.build(week(), window_start=START, window_end=END, jobs=jobs)

    text = digest_summary(built)

    assert text.startswith(
        "2026-11-30 09:00 UTC to 2026-12-07 09:00 UTC: 5 commits, 1 merged pull request, "
        "1 closed issue by 3 authors."
    )
    assert "Most active: ada (4), bob (2), cy (1)." in text
    assert "Released: v1.2.0." in text
    assert "Jobs: 4 job runs, 75% succeeded (1 failed, 1 skipped)." in text
    assert text.endswith("nightly has failed 3 times in a row.")
    metadata = {
        "activity": {"commits": 5, "pullRequests": 1, "issues": 1, "tags": 1},
        "digest": built.model_dump(mode="json", by_alias=True),
    }
    assert result_sentence(JobType.ANALYTICS, "COMPLETED", metadata) == (
        "Digest sent: 5 commits, 1 merged pull request, 1 closed issue, 1 tag; "
        "4 job runs (75% succeeded)"
    )
    assert result_sentence(JobType.ANALYTICS, "RUNNING", metadata) is None


def test_a_sync_result_names_what_it_synced() -> None:
    metadata = {"activity": {"commits": 12, "pullRequests": 3, "issues": 2, "tags": 0}}

    assert result_sentence(JobType.SYNC_GITHUB, "COMPLETED", metadata) == (
        "Synced 12 commits, 3 merged pull requests, 2 closed issues"
    )
    assert result_sentence(JobType.SYNC_GITHUB, "COMPLETED", {}) == (
        "Synced 0 commits, 0 merged pull requests, 0 closed issues"
    )
    assert result_sentence(JobType.SYNC_GITHUB, "FAILED", metadata) is None
    assert result_sentence(
        JobType.GENERATE_CONTENT, "COMPLETED", metadata, items_processed=3, items_success=2
    ) == ("2 of 3 posts generated")
