"""An ANALYTICS run's digest, pure: the window's activity and the project's jobs over it.

`services.api.analytics` reads the jobs' figures and calls `build`; nothing here touches
the database, so every rule (the chart's span, the top authors, the success rates) is
tested with plain values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.events import (
    ActivitySummary,
    Digest,
    DigestAuthor,
    DigestBucket,
    DigestJob,
    ExecutionStatus,
    JobType,
)

TOP_AUTHORS = 5
MAX_JOBS = 30
MIN_BARS = 7
MAX_BARS = 31
# The chart's spans per bar (see `bucket_span`).
SPANS = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
    timedelta(days=365),
)
# A window of unknown start (none recorded, nothing found) is read as the day before its end.
DEFAULT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class JobFigures:
    """One job of the project: its runs over the window by status, and its streak."""

    job_id: str
    name: str
    type: str
    # Runs recorded in the window, by final status; `missed` counts the slots MISSED rows name.
    by_status: dict[str, int]
    missed: int
    duration_ms: int
    timed_runs: int
    consecutive_failures: int


def window_opening(
    window_start: datetime | None, window_end: datetime, summary: ActivitySummary
) -> datetime:
    """Where the digest's window opens: the run's own start, else its oldest item's time."""
    if window_start is not None:
        return window_start
    times = [item.at for item in summary.items if item.at is not None]
    return min(times) if times else window_end - DEFAULT_WINDOW


def bucket_span(start: datetime, end: datetime) -> timedelta:
    """The longest span drawing the window in MIN_BARS to MAX_BARS bars (a week: a day a
    bar); a window too short for that, the shortest span that fits it."""
    length = max(end - start, timedelta(seconds=1))
    bars = {span: math.ceil(length / span) for span in SPANS}
    for span in reversed(SPANS):
        if MIN_BARS <= bars[span] <= MAX_BARS:
            return span
    for span in SPANS:
        if bars[span] <= MAX_BARS:
            return span
    return SPANS[-1]


def timeline(
    summary: ActivitySummary, start: datetime, end: datetime
) -> tuple[timedelta, list[DigestBucket]]:
    """The chart: commits, pull requests and issues per span from `start`, oldest first."""
    span = bucket_span(start, end)
    bars = min(MAX_BARS, max(1, math.ceil((end - start) / span)))
    counts: list[Counter[str]] = [Counter() for _ in range(bars)]
    for item in summary.items:
        if item.at is None or item.kind == "tag" or not start <= item.at <= end:
            continue
        index = min(bars - 1, int((item.at - start) / span))
        counts[index][item.kind] += 1
    return span, [
        DigestBucket(
            start=start + span * index,
            commits=count["commit"],
            pull_requests=count["pull_request"],
            issues=count["issue"],
        )
        for index, count in enumerate(counts)
    ]


def top_authors(summary: ActivitySummary) -> list[DigestAuthor]:
    """The most active authors among the scan's items, most items first, then by name."""
    counted = Counter(item.author for item in summary.items if item.author and item.kind != "tag")
    ranked = sorted(counted.items(), key=lambda pair: (-pair[1], pair[0].lower()))
    return [DigestAuthor(name=name, items=items) for name, items in ranked[:TOP_AUTHORS]]


def success_rate(succeeded: int, failed: int) -> float | None:
    """Percent of the runs that completed or failed, to one decimal; None without any."""
    total = succeeded + failed
    return round(succeeded / total * 100, 1) if total else None


def job_digest(figures: JobFigures) -> DigestJob:
    by_status = figures.by_status
    succeeded = by_status.get(ExecutionStatus.COMPLETED, 0)
    failed = by_status.get(ExecutionStatus.FAILED, 0) + by_status.get(ExecutionStatus.TIMEOUT, 0)
    return DigestJob(
        job_id=figures.job_id,
        name=figures.name,
        type=JobType(figures.type),
        runs=succeeded + failed,
        succeeded=succeeded,
        failed=failed,
        skipped=by_status.get(ExecutionStatus.SKIPPED, 0),
        missed=figures.missed,
        cancelled=by_status.get(ExecutionStatus.CANCELLED, 0),
        success_rate=success_rate(succeeded, failed),
        average_duration=(
            round(figures.duration_ms / figures.timed_runs) if figures.timed_runs else None
        ),
        consecutive_failures=figures.consecutive_failures,
    )


def build(
    summary: ActivitySummary,
    *,
    window_start: datetime | None,
    window_end: datetime,
    jobs: Sequence[JobFigures],
) -> Digest:
    """The digest of a window's activity and of the project's jobs' runs over it."""
    start = window_opening(window_start, window_end, summary)
    span, bars = timeline(summary, start, window_end)
    per_job = [job_digest(figures) for figures in jobs]
    # The busiest jobs first; a project with very many jobs keeps its busiest in the digest,
    # while the totals count them all.
    listed = sorted(per_job, key=lambda job: (-(job.runs + job.skipped + job.missed), job.name))
    succeeded = sum(job.succeeded for job in per_job)
    failed = sum(job.failed for job in per_job)
    timed = sum(figures.timed_runs for figures in jobs)
    return Digest(
        window_start=window_start,
        window_end=window_end,
        commits=summary.commits,
        pull_requests=summary.pull_requests,
        issues=summary.issues,
        tags=summary.tags,
        contributors=len(summary.contributors),
        top_authors=top_authors(summary),
        notable=summary.notable,
        releases=summary.releases,
        items_seen=len(summary.items),
        items_total=summary.commits + summary.pull_requests + summary.issues + summary.tags,
        bucket_seconds=int(span.total_seconds()),
        timeline=bars,
        runs=succeeded + failed,
        succeeded=succeeded,
        failed=failed,
        skipped=sum(job.skipped for job in per_job),
        missed=sum(job.missed for job in per_job),
        cancelled=sum(job.cancelled for job in per_job),
        success_rate=success_rate(succeeded, failed),
        average_duration=(
            round(sum(figures.duration_ms for figures in jobs) / timed) if timed else None
        ),
        jobs=listed[:MAX_JOBS],
    )
