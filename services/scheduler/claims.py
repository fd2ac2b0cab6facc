"""Claim due jobs and fire them: execution rows, events in the outbox, next runs advanced.

All of a batch happens in one transaction. Rows are claimed with `FOR UPDATE SKIP LOCKED`,
so replicas share the due jobs without waiting on each other; the unique key on (job,
scheduled instant) holds even if two replicas ever raced on one slot. `planning` decides
each job's runs; `store` holds the statements.

`fire_ahead` does the same for the jobs of an instant shortly before it, and commits at it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import records, store
from services.scheduler.planning import Batch, inserted_run, plan_job
from shared import metrics, outbox, tracing
from shared.dispatch import accumulates, job_due_event
from shared.events import Event, ExecutionStatus
from shared.run_log import RunLine, ended_line, fired_line, log_runs
from shared.scheduling import ScheduleError

log = structlog.get_logger(__name__)

# Seconds that must be left before an instant for `fire_ahead` to spend some of them on a
# garbage collection (tens of milliseconds; never so close that it could delay the commit).
COLLECT_BEFORE = 1.0


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    fired: int
    outcomes: dict[str, int] = field(default_factory=dict)
    # What an operator reads about each run written, logged once the batch committed.
    runs: tuple[RunLine, ...] = ()


async def fire_due(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    batch: int,
    grace: float = 60.0,
    public_url: str = "http://127.0.0.1:8000",
) -> BatchResult:
    """Fire up to `batch` jobs due at `now`, in one transaction."""
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        result = await _fire(session, now=now, batch=batch, grace=grace, public_url=public_url)
    _count(result, started)
    log_runs(log, "runs fired", result.runs)
    return result


async def fire_ahead(
    sessions: async_sessionmaker[AsyncSession],
    *,
    at: datetime,
    clock: Callable[[], datetime],
    batch: int,
    most: int,
    grace: float = 60.0,
    public_url: str = "http://127.0.0.1:8000",
) -> BatchResult:
    """Fire the jobs due at `at` (up to `most`), written before it comes and committed at it.

    Each batch is claimed and written in its own transaction as if at `at`, then every
    transaction waits for `at` and commits: at the instant only the commits and the relay's
    publishing remain, so a run is late by those alone. Until then the claimed jobs stay
    locked (a change to one through the API waits for the commit, and then sees the run),
    and nothing is visible: a crash meanwhile rolls all of it back, to be fired as usual.
    """
    started = time.perf_counter()
    claimed = fired = 0
    outcomes: Counter[str] = Counter()
    runs: list[RunLine] = []
    held: list[AsyncSession] = []
    try:
        while claimed < most:
            session = sessions()
            held.append(session)
            await session.begin()
            size = min(batch, most - claimed)
            result = await _fire(session, now=at, batch=size, grace=grace, public_url=public_url)
            claimed, fired = claimed + result.claimed, fired + result.fired
            outcomes.update(result.outcomes)
            runs.extend(result.runs)
            if result.claimed < size:
                break
        wait = (at - clock()).total_seconds()
        if wait > COLLECT_BEFORE:
            # A full collection now, while nothing waits on this process, rather than among
            # the instant's commits and publishes (it paused them 60-90 ms when it fell there).
            gc.collect()
            wait = (at - clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        # Every held batch commits at once: their WAL flushes are shared (group commit),
        # where one after another each waited for its own (about 10 ms apiece).
        await asyncio.gather(*(session.commit() for session in held))
    finally:
        # Closing rolls back whatever did not commit (a crash or a failed commit): those
        # jobs are still due and are fired as usual.
        for session in held:
            await session.close()
    result = BatchResult(claimed=claimed, fired=fired, outcomes=dict(outcomes), runs=tuple(runs))
    _count(result, started)
    log_runs(log, "runs fired", result.runs)
    return result


def _count(result: BatchResult, started: float) -> None:
    if not result.claimed:
        return
    for outcome, count in result.outcomes.items():
        metrics.SCHEDULER_FIRES.labels(outcome=outcome).inc(count)
    metrics.SCHEDULER_CLAIM_SECONDS.observe(time.perf_counter() - started)


async def _fire(
    session: AsyncSession, *, now: datetime, batch: int, grace: float, public_url: str
) -> BatchResult:
    """Claim up to `batch` jobs due at `now` and write their runs, in the caller's transaction:
    one multi-row INSERT of executions, one of outbox rows, one UPDATE of the jobs."""
    work = Batch(now=now)
    claimed = await store.claim_due(session, now=now, limit=batch)
    if not claimed:
        return BatchResult(claimed=0, fired=0)
    ids = [job.id for job in claimed]
    projects = await store.projects_of(session, {job.project_id for job in claimed})
    unfinished = await store.unfinished_counts(session, ids)
    accumulating = {job.id for job in claimed if accumulates(job.conditions)}
    openings = await store.window_openings(session, ids, accumulating=accumulating)
    disabled: list[dict[str, Any]] = []
    for job in claimed:
        try:
            plan_job(
                work, job, projects[job.project_id], unfinished.get(job.id, 0), openings, grace
            )
        except ScheduleError as exc:
            # An invalid stored schedule disables the job with the reason, never a crash loop.
            log.error("job disabled: invalid schedule", job_id=job.id, reason=exc.message)
            job.disabled = True
            disabled.append({"b_id": job.id, "b_reason": f"invalid schedule: {exc.message}"})
            work.outcomes["disabled"] += 1
    traceparents = _trace_runs(work.rows) if tracing.enabled() else None
    inserted = await store.insert_executions(session, work.rows)
    names = {job.id: job.name for job in claimed}
    events: list[Event] = []
    runs: list[RunLine] = []
    for values in work.rows:
        execution_id = values["id"]
        if execution_id not in inserted:
            log.info("slot already fired elsewhere", job_id=values["job_id"])
            continue
        runs.append(_run_line(work, values, names[values["job_id"]]))
        if execution_id in work.dispatch:
            job, project = work.dispatch[execution_id]
            events.append(job_due_event(job, project, inserted_run(values), now=now))
        elif execution_id in work.terminal:
            job, project = work.terminal[execution_id]
            events.append(
                await records.finished_event(
                    session, job, project, inserted_run(values), public_url=public_url
                )
            )
    await store.advance(session, claimed, disabled)
    await outbox.enqueue(session, *events, traceparents=traceparents)
    return BatchResult(
        claimed=len(claimed),
        fired=len(work.dispatch),
        outcomes=dict(work.outcomes),
        runs=tuple(runs),
    )


def _trace_runs(rows: list[dict[str, Any]]) -> dict[str, str | None]:
    """Begin a trace for each run about to be written (one trace per execution, not one per
    claim of hundreds): its id is recorded on the execution, its context kept with the
    run's outbox row, so the publish and everything after continue it."""
    traceparents: dict[str, str | None] = {}
    for values in rows:
        values["trace_id"], traceparents[values["id"]] = tracing.begin_run(
            values["id"], values["job_id"], values["trigger"]
        )
    return traceparents


def _run_line(work: Batch, values: dict[str, Any], job_name: str) -> RunLine:
    common = {
        "execution_id": values["id"],
        "job_id": values["job_id"],
        "job_name": job_name,
        "trigger": values["trigger"],
        "scheduled_for": values["scheduled_for"],
    }
    if values["status"] == ExecutionStatus.PENDING:
        event = "run fired" if values["id"] in work.dispatch else "run buffered"
        return fired_line(event, **common)
    return ended_line(
        values["status"],
        duration_ms=None,
        items_processed=0,
        items_success=0,
        items_failed=0,
        reason=values["error_message"],
        missed_count=values["missed_count"],
        **common,
    )
