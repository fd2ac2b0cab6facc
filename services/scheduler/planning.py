"""Plan a claimed job's runs: which slots fire, are missed or skipped, and its next run.

Per job:

1. Recover the slot from the stored next run (which may carry the slot's jitter); a slot
   whose jitter has not elapsed is only deferred.
2. The catch-up policy decides the due slots: run the one on time, or the latest inside the
   catch-up window (CATCHUP), and record older ones as one MISSED execution.
3. The overlap policy decides a run: fire it, skip it (SKIPPED), or buffer it (BUFFER_ONE).
4. The next run advances past both the slot and now, with its own jitter.

Planning reads and writes nothing in the database: it fills a `Batch`, which `claims`
writes in a few statements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.scheduler import slots
from services.scheduler.policies import OverlapAction, overlap_action, plan_catch_up
from services.scheduler.store import ClaimedJob
from shared.db.schema import Project
from shared.dispatch import next_run_after, previous_slot
from shared.events import ExecutionStatus, Trigger
from shared.ids import new_id


@dataclass
class Batch:
    """What one claim pass writes, gathered so each kind is written in one statement."""

    now: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    dispatch: dict[str, tuple[ClaimedJob, Project]] = field(default_factory=dict)
    terminal: dict[str, tuple[ClaimedJob, Project]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        job: ClaimedJob,
        project: Project,
        *,
        slot: datetime,
        trigger: Trigger,
        status: ExecutionStatus,
        window_start: datetime | None,
        **extra: Any,
    ) -> str:
        execution_id = new_id("exec")
        terminal = status in (ExecutionStatus.SKIPPED, ExecutionStatus.MISSED)
        self.rows.append(
            {
                "id": execution_id,
                "job_id": job.id,
                "project_id": project.id,
                "user_id": job.user_id,
                "scheduled_for": slot,
                "trigger": trigger.value,
                "triggered_by": None,
                "status": status.value,
                "attempt": 1,
                "window_start": window_start,
                "window_end": slot,
                "deadline": None if terminal else self.now + timedelta(seconds=job.timeout_seconds),
                "completed_at": self.now if terminal else None,
                "items_processed": 0,
                "items_success": 0,
                "items_failed": 0,
                "metadata": {},
                "missed_count": None,
                "first_missed_at": None,
                "last_missed_at": None,
                "error_message": None,
                "created_at": self.now,
                "updated_at": self.now,
                **extra,
            }
        )
        if terminal:
            self.terminal[execution_id] = (job, project)
        return execution_id


def plan_job(
    work: Batch,
    job: ClaimedJob,
    project: Project,
    unfinished: int,
    openings: dict[str, datetime],
    grace: float,
) -> None:
    now = work.now
    stored = job.next_run_at
    assert stored is not None
    slot = slots.slot_of(job, stored)
    following = next_run_after(job, slot)
    fire_at = slot
    if job.jitter:
        fire_at = slots.jittered(job, slot)
    if following > now:
        if fire_at > now:  # a slot stored without its jitter: wait for it
            job.next_run_at = fire_at
            work.outcomes["deferred"] += 1
            return
        latest = slot
    else:
        latest = max(slot, slots.latest_slot(job, now) or slot)
        following = next_run_after(job, max(latest, now))
    plan = plan_catch_up(
        first=slot,
        latest=latest,
        now=now,
        fire_at=fire_at,
        catchup_window=job.catchup_window,
        grace=grace,
        last_slot_before=lambda before: previous_slot(job, before),
        count_slots=lambda first, last: slots.count_slots(job, first, last),
    )

    def window_start(end: datetime) -> datetime | None:
        # After the last scanned run (`store.window_openings`), else from the previous slot.
        opens = openings.get(job.id)
        if opens is not None and opens < end:
            return opens
        return previous_slot(job, end)

    if plan.missed is not None:
        missed = plan.missed
        work.add(
            job,
            project,
            slot=missed.last,
            trigger=Trigger.SCHEDULE,
            status=ExecutionStatus.MISSED,
            window_start=window_start(missed.last),
            missed_count=missed.count,
            first_missed_at=missed.first,
            last_missed_at=missed.last,
            error_message=f"{missed.count} scheduled run(s) missed while the scheduler was away",
        )
        work.outcomes["missed"] += 1
    if plan.run is not None:
        run = plan.run
        action = overlap_action(
            job.overlap_policy,
            unfinished=unfinished,
            buffered_waiting=job.buffered_execution_id is not None,
        )
        if unfinished == 0:
            job.buffered_execution_id = None  # whatever waited has run or was cancelled
        if action == OverlapAction.SKIP:
            work.add(
                job,
                project,
                slot=run,
                trigger=plan.trigger,
                status=ExecutionStatus.SKIPPED,
                window_start=window_start(run),
                error_message="skipped: the previous run has not finished",
            )
            work.outcomes["skipped"] += 1
        else:
            execution_id = work.add(
                job,
                project,
                slot=run,
                trigger=plan.trigger,
                status=ExecutionStatus.PENDING,
                window_start=window_start(run),
            )
            if action == OverlapAction.BUFFER:
                job.buffered_execution_id = execution_id
                work.outcomes["buffered"] += 1
            else:
                work.dispatch[execution_id] = (job, project)
                work.outcomes["catchup" if plan.trigger == Trigger.CATCHUP else "fired"] += 1
        job.last_run_at = run
    job.next_run_at = slots.jittered(job, following)


@dataclass(frozen=True)
class InsertedRun:
    """The fields of an inserted execution an event is built from (no ORM instance: cheaper)."""

    id: str
    attempt: int
    scheduled_for: datetime
    trigger: str
    status: str
    window_start: datetime | None
    window_end: datetime
    completed_at: datetime | None
    error_message: str | None
    missed_count: int | None
    user_id: str
    # Never set on what the scheduler inserts (PENDING, SKIPPED, MISSED rows).
    started_at: datetime | None = None
    duration: int | None = None
    items_processed: int = 0
    items_success: int = 0
    items_failed: int = 0
    skip_reason: str | None = None


def inserted_run(row: dict[str, Any]) -> InsertedRun:
    """The run a row of `Batch.rows` describes."""
    return InsertedRun(
        **{name: row[name] for name in InsertedRun.__dataclass_fields__ if name in row}
    )
