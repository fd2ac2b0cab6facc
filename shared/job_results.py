"""What a finished run produced, in one sentence: the execution page's and the alert's headline.

Each job type has its own result: posts written, activity synced, a digest delivered. Pure,
so the api's views and the `execution.finished` it writes say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events import ExecutionStatus, JobType


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def activity_phrase(activity: Mapping[str, Any]) -> str:
    """`12 commits, 3 merged pull requests, 2 closed issues` (tags only when there are any)."""
    parts = [
        _plural(int(activity.get("commits", 0)), "commit", "commits"),
        _plural(
            int(activity.get("pullRequests", 0)), "merged pull request", "merged pull requests"
        ),
        _plural(int(activity.get("issues", 0)), "closed issue", "closed issues"),
    ]
    if tags := int(activity.get("tags", 0)):
        parts.append(_plural(tags, "tag", "tags"))
    return ", ".join(parts)


def result_sentence(
    job_type: str,
    status: str,
    metadata: Mapping[str, Any],
    *,
    items_processed: int = 0,
    items_success: int = 0,
) -> str | None:
    """The run's result, or None while it runs or when it ended without one."""
    if status != ExecutionStatus.COMPLETED:
        return None
    activity = metadata.get("activity") or {}
    if job_type == JobType.SYNC_GITHUB:
        return f"Synced {activity_phrase(activity)}"
    if job_type == JobType.ANALYTICS:
        digest = metadata.get("digest") or {}
        runs = int(digest.get("runs", 0))
        rate = digest.get("successRate")
        jobs = _plural(runs, "job run", "job runs")
        if rate is not None:
            jobs += f" ({rate:g}% succeeded)"
        return f"Digest sent: {activity_phrase(activity)}; {jobs}"
    if items_processed:
        return f"{items_success} of {_plural(items_processed, 'post', 'posts')} generated"
    return "No activity in the window: nothing to write"
