"""The lines an operator reads to follow runs: fired, completed, failed, once each.

The scheduler logs what it fires (and skips, buffers, records as missed), the api what it
ends; both after the transaction that did it committed, so a logged run happened.

Why a cap per batch: one line per run is what a terminal watching a handful of jobs wants,
but the scheduler fires thousands of runs a second in a benchmark, and the api ends as many;
rendering and writing a JSON line each would cost more than the claim itself and bury every
other line. So a batch of up to `PER_RUN_LINES` runs logs a line per run at INFO; a larger
one logs one INFO line with its counts, and the per-run lines at DEBUG (which a filtering
logger drops for the price of a call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.dispatch import Run, ScheduledJob
from shared.events import ExecutionStatus

PER_RUN_LINES = 10
# An error message is the run page's to show in full; the log line names it.
REASON_CHARS = 300

RunLine = tuple[str, dict[str, Any]]

_ENDED = {
    ExecutionStatus.COMPLETED: "run completed",
    ExecutionStatus.FAILED: "run failed",
    ExecutionStatus.TIMEOUT: "run timed out",
    ExecutionStatus.CANCELLED: "run cancelled",
    ExecutionStatus.SKIPPED: "run skipped",
    ExecutionStatus.MISSED: "runs missed",
}


def log_runs(logger: Any, summary: str, lines: Sequence[RunLine]) -> None:
    """Log each run at INFO, or past `PER_RUN_LINES` one summary at INFO and each at DEBUG."""
    if len(lines) <= PER_RUN_LINES:
        for event, fields in lines:
            logger.info(event, **fields)
        return
    logger.info(summary, runs=len(lines), outcomes=dict(Counter(event for event, _ in lines)))
    for event, fields in lines:
        logger.debug(event, **fields)


def fired_line(
    event: str,
    *,
    execution_id: str,
    job_id: str,
    job_name: str,
    trigger: str,
    scheduled_for: datetime,
) -> RunLine:
    """Describe a run that was fired (or buffered) for its job's slot."""
    return event, {
        "execution_id": execution_id,
        "job_id": job_id,
        "job_name": job_name,
        "trigger": str(trigger),
        "scheduled_for": scheduled_for.isoformat(),
    }


def fired_run(event: str, job: ScheduledJob, run: Run) -> RunLine:
    """`fired_line` of a stored (or just written) run of `job`."""
    return fired_line(
        event,
        execution_id=run.id,
        job_id=job.id,
        job_name=job.name,
        trigger=run.trigger,
        scheduled_for=run.scheduled_for,
    )


def ended_line(
    status: str,
    *,
    execution_id: str,
    job_id: str,
    job_name: str,
    trigger: str,
    scheduled_for: datetime,
    duration_ms: int | None,
    items_processed: int,
    items_success: int,
    items_failed: int,
    reason: str | None = None,
    missed_count: int | None = None,
    trace_id: str | None = None,
) -> RunLine:
    """Describe a run that reached a terminal status: how long, how many posts, and why not."""
    fields: dict[str, Any] = {
        "execution_id": execution_id,
        "job_id": job_id,
        "job_name": job_name,
        "trigger": str(trigger),
        "scheduled_for": scheduled_for.isoformat(),
        "status": str(status),
        "duration_ms": duration_ms,
        "items_processed": items_processed,
        "items_success": items_success,
        "items_failed": items_failed,
    }
    if reason:
        fields["reason"] = reason[:REASON_CHARS]
    if missed_count:
        fields["missed_count"] = missed_count
    if trace_id:
        # The line is written after the batch, outside any one run's span: the run's own
        # trace is named so the line still leads to it.
        fields["trace_id"] = trace_id
    return _ENDED.get(ExecutionStatus(status), "run ended"), fields
