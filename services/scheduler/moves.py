"""Compute the stored next runs again when the time-zone rules change: a batch at a time.

The `scheduling_state` row `zone_rules` records the database version the stored next runs
follow. A scheduler running a newer one (`zonedata.is_newer`) takes the row as its target
and works through the live, enabled jobs in id order, a batch per transaction:

1. Lock the state row; while another replica holds it, leave the batch to that one (each
   batch continues where the last one ended, whoever ran it, so every job is looked at
   once, and no claim loop ever queues behind another's batch).
2. Lock the next jobs after the cursor whose next run is still ahead, skipping any another
   transaction holds (a claim writes its own next run with the same rules; an edit through
   the api writes the one the user asked for).
3. Compute each job's next run under the rules in force now; write those that moved, with a
   `schedule.moved` event for the owner through the outbox.
4. Move the cursor; with the jobs exhausted, record the version as the one in force.

A job whose next run did not move is not written and its owner hears nothing. A database
with no version recorded (a new one, or one from before herald recorded it) takes this
scheduler's as the version of what is stored, and moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import structlog
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import slots, store
from services.scheduler.store import ClaimedJob, live_jobs
from shared import metrics, outbox
from shared.db.schema import CronJob, Project, SchedulingState
from shared.db.upsert import insert_ignore
from shared.dispatch import job_timezone
from shared.events import NotificationSettings, ScheduleMoved
from shared.ids import derived_event_id
from shared.notification_settings import public_settings
from shared.scheduling import ScheduleError
from shared.scheduling.zonedata import is_newer

log = structlog.get_logger(__name__)

ZONE_RULES = "zone_rules"
_JOBS = cast(Table, CronJob.__table__)
_STATE = cast(Table, SchedulingState.__table__)
_MOVE = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("b_id"))
    # Only the scheduling column: the job was not edited, so `updatedAt` stays.
    .values(next_run_at=bindparam("b_next_run_at"), updated_at=_JOBS.c.updated_at)
)


@dataclass(frozen=True)
class Step:
    """What one step did: jobs moved, whether more remain, and the version now recorded."""

    moved: int
    more: bool
    recorded: str | None


@dataclass(frozen=True)
class Move:
    job: ClaimedJob
    previous: datetime
    next_run: datetime


async def step(
    sessions: async_sessionmaker[AsyncSession],
    *,
    version: str,
    now: datetime,
    batch: int,
    public_url: str,
) -> Step:
    """Bring one batch of stored next runs up to `version`, in one transaction."""
    async with sessions() as session, session.begin():
        state = await session.scalar(
            select(SchedulingState)
            .where(SchedulingState.name == ZONE_RULES)
            .with_for_update(skip_locked=True)
        )
        if state is None and await session.get(SchedulingState, ZONE_RULES) is not None:
            # Another replica holds the row for its batch: never queue the claim loop
            # behind it. That replica carries the work on; this one looks again later.
            return Step(moved=0, more=False, recorded=None)
        if state is None:
            await insert_ignore(
                session,
                _STATE,
                {"name": ZONE_RULES, "version": version, "moved": 0, "updated_at": now},
            )
            log.info("time-zone database version recorded", version=version)
            return Step(moved=0, more=False, recorded=version)
        if not _works_towards(state, version, now):
            return Step(moved=0, more=False, recorded=state.version)
        jobs = await _lock_batch(session, after=state.cursor, now=now, limit=batch)
        moves = _moves(jobs, now)
        if moves:
            await session.execute(
                _MOVE, [{"b_id": m.job.id, "b_next_run_at": m.next_run} for m in moves]
            )
            projects = await store.projects_of(session, {m.job.project_id for m in moves})
            await outbox.enqueue(
                session,
                *_told(moves, projects, version, state.version, public_url=public_url, now=now),
            )
        state.moved += len(moves)
        state.updated_at = now
        if jobs:
            state.cursor = jobs[-1].id
        done = len(jobs) < batch
        previous, total = state.version, state.moved
        if done:
            state.version, state.target_version, state.cursor = version, None, None
    metrics.SCHEDULER_TZ_RECOMPUTED.inc(len(moves))
    if done:
        log.info(
            "next runs computed again under new time-zone rules",
            version=version,
            previous_version=previous,
            moved=total,
        )
    return Step(moved=len(moves), more=not done, recorded=version if done else previous)


def _told(
    moves: list[Move],
    projects: dict[str, Project],
    version: str,
    previous_version: str | None,
    *,
    public_url: str,
    now: datetime,
) -> list[ScheduleMoved]:
    """The owners' `schedule.moved` events; a job whose event cannot be built (a project's
    stored settings no longer valid, say) still moves, and only its owner goes untold."""
    events = []
    for move in moves:
        try:
            events.append(
                moved_event(
                    move,
                    projects[move.job.project_id],
                    version=version,
                    previous_version=previous_version,
                    public_url=public_url,
                    now=now,
                )
            )
        except Exception:
            log.exception("owner not told of a moved next run", job_id=move.job.id)
    return events


def _works_towards(state: SchedulingState, version: str, now: datetime) -> bool:
    """Whether this scheduler has next runs to compute again: it takes the row as its target
    when its version is newer than the one recorded (or than a target being worked on)."""
    if state.target_version == version:
        return True
    if state.target_version is None and not is_newer(version, state.version):
        return False
    if state.target_version is not None and not is_newer(version, state.target_version):
        return False
    log.info(
        "time-zone rules changed: computing next runs again",
        previous_version=state.version,
        version=version,
        # A target left unfinished by an older scheduler: begun again under these rules.
        replaced_target=state.target_version,
    )
    state.target_version, state.cursor, state.moved, state.updated_at = version, None, 0, now
    return True


async def _lock_batch(
    session: AsyncSession, *, after: str | None, now: datetime, limit: int
) -> list[ClaimedJob]:
    conditions = [*live_jobs(), CronJob.next_run_at > now]
    if after is not None:
        conditions.append(CronJob.id > after)
    rows = await session.execute(
        select(*store.CLAIMED_COLUMNS)
        .where(*conditions)
        .order_by(CronJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [ClaimedJob(**row) for row in rows.mappings()]


def _moves(jobs: list[ClaimedJob], now: datetime) -> list[Move]:
    moves = []
    for job in jobs:
        stored = job.next_run_at
        assert stored is not None
        try:
            next_run = slots.recomputed(job, stored, now=now)
        except ScheduleError as exc:
            # Left as stored: the claim disables it with the reason when it falls due.
            log.warning(
                "next run not recomputed: invalid schedule", job_id=job.id, reason=exc.message
            )
            continue
        if next_run != stored:
            moves.append(Move(job=job, previous=stored, next_run=next_run))
    return moves


def job_link(public_url: str, job_id: str) -> str:
    return f"{public_url.rstrip('/')}/console/jobs/{job_id}"


def moved_event(
    move: Move,
    project: Project,
    *,
    version: str,
    previous_version: str | None,
    public_url: str,
    now: datetime,
) -> ScheduleMoved:
    """Tell a job's owner its next run moved (webhook URLs stay encrypted, as for any alert)."""
    job = move.job
    settings = NotificationSettings.model_validate(
        public_settings(project.notification_settings, keep_encrypted=True)
    )
    return ScheduleMoved(
        # One per job and version: a batch that commits twice cannot (its cursor moved).
        event_id=derived_event_id(job.id, f"schedule.moved:{version}"),
        occurred_at=now,
        job_id=job.id,
        project_id=project.id,
        user_id=job.user_id,
        job_name=job.name,
        project_name=project.name,
        timezone=job_timezone(job.time_config),
        previous_run_at=move.previous,
        next_run_at=move.next_run,
        rules_version=version,
        previous_rules_version=previous_version,
        notification_settings=settings,
        recipients=settings.recipients,
        link=job_link(public_url, job.id),
    )
