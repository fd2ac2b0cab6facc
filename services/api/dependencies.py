"""Job dependencies: what a job runs after, and the runs an upstream's end starts.

A job names upstream jobs of its own user (`dependsOn`, stored on the job). The api checks
them when the job is saved (each a live job of the caller, no duplicate, no cycle), and
starts the dependents' runs in the transaction that records the upstream's end
(`services.api.batch`), their `job.due` through the outbox like a manual run's. One run of a
dependent per upstream run: the unique key (job, upstream execution) makes a second
application of the same end insert nothing and queue nothing.

Only runs that ran start dependents: COMPLETED (onSuccess, onCompletion), FAILED and TIMEOUT
(onFailure, onCompletion). A SKIPPED, MISSED or CANCELLED run produced nothing a dependent
could take, so it starts none, whoever recorded it (api or scheduler).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.problems import invalid_fields
from services.api.requests import Dependency, DependencyOn
from services.api.transitions import Finish
from shared import metrics, outbox, tracing
from shared.db.schema import CronJob, Execution, JobStatistics, Project
from shared.dispatch import job_due_event, window_start_for
from shared.events import Event, ExecutionStatus, Trigger
from shared.finished import finished_event
from shared.ids import new_id

# Which `on` an upstream's terminal status answers.
FIRES: dict[str, frozenset[str]] = {
    ExecutionStatus.COMPLETED: frozenset({DependencyOn.SUCCESS, DependencyOn.COMPLETION}),
    ExecutionStatus.FAILED: frozenset({DependencyOn.FAILURE, DependencyOn.COMPLETION}),
    ExecutionStatus.TIMEOUT: frozenset({DependencyOn.FAILURE, DependencyOn.COMPLETION}),
}

_OPEN = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)


@dataclass(frozen=True)
class Ended:
    """An upstream execution that ended, as its dependents are judged by it."""

    execution_id: str
    job_id: str
    user_id: str
    status: str

    @classmethod
    def of_finish(cls, finish: Finish) -> Ended:
        """An end the event batch applied."""
        row = finish.row
        return cls(row["id"], row["job_id"], row["user_id"], finish.status)

    @classmethod
    def of_execution(cls, execution: Execution) -> Ended:
        """An end recorded on the row itself (the timeout sweeper's)."""
        return cls(execution.id, execution.job_id, execution.user_id, execution.status)


def cycle_through(upstreams: Mapping[str, Sequence[str]], job_id: str) -> list[str] | None:
    """Return a path `job_id → … → job_id` along `upstreams` (job → the jobs it runs after)."""
    path = [job_id]
    seen: set[str] = set()

    def walk(current: str) -> bool:
        for upstream in upstreams.get(current, ()):
            path.append(upstream)
            if upstream == job_id:
                return True
            if upstream not in seen:
                seen.add(upstream)
                if walk(upstream):
                    return True
            path.pop()
        return False

    return path if walk(job_id) else None


def upstream_ids(depends_on: Iterable[Mapping[str, str]] | None) -> list[str]:
    return [entry["jobId"] for entry in depends_on or ()]


async def checked_dependencies(
    session: AsyncSession, *, job_id: str, user_id: str, dependencies: list[Dependency] | None
) -> list[dict[str, str]] | None:
    """Return the stored form of a job's dependencies, or raise the 422 naming what is wrong.

    Each must name a live job of the caller, once; none may close a cycle through the job.
    """
    if not dependencies:
        return None
    live = {
        row.id: upstream_ids(row.depends_on)
        for row in (
            await session.execute(
                select(CronJob.id, CronJob.depends_on).where(
                    CronJob.user_id == user_id, CronJob.deleted_at.is_(None)
                )
            )
        ).all()
    }
    errors: list[dict[str, str]] = []
    named: set[str] = set()
    for index, dependency in enumerate(dependencies):
        field = f"dependsOn.{index}.jobId"
        if dependency.job_id in named:
            errors.append({"field": field, "message": f"{dependency.job_id} is named twice"})
        elif dependency.job_id not in live:
            errors.append({"field": field, "message": f"no job {dependency.job_id} of yours"})
        named.add(dependency.job_id)
    if errors:
        raise invalid_fields(errors)
    live[job_id] = [dependency.job_id for dependency in dependencies]
    cycle = cycle_through(live, job_id)
    if cycle is not None:
        raise invalid_fields(
            [{"field": "dependsOn", "message": f"{' → '.join(cycle)} would form a cycle"}]
        )
    return [dependency.stored() for dependency in dependencies]


async def dependency_warnings(session: AsyncSession, job: CronJob) -> list[str]:
    """Say which of the job's upstreams cannot start it on their own: deleted or disabled."""
    wanted = upstream_ids(job.depends_on)
    if not wanted:
        return []
    rows = {
        row.id: row
        for row in (
            await session.execute(
                select(CronJob.id, CronJob.name, CronJob.is_enabled, CronJob.deleted_at).where(
                    CronJob.id.in_(wanted), CronJob.user_id == job.user_id
                )
            )
        ).all()
    }
    warnings = []
    for upstream in wanted:
        row = rows.get(upstream)
        if row is None or row.deleted_at is not None:
            warnings.append(
                f"{upstream}: the upstream job was deleted; this dependency never fires"
            )
        elif not row.is_enabled:
            warnings.append(
                f"{upstream} ({row.name}): the upstream job is disabled; this dependency "
                "fires only when it is run by hand"
            )
    return warnings


async def start_dependents(
    session: AsyncSession, finishes: Sequence[Ended], *, public_url: str
) -> None:
    """Write the runs the finished executions start in their dependents, with their events.

    1. Find the live, enabled jobs of the finishing runs' users that name one of them, and
       lock those jobs (a manual trigger of one waits, so overlap is judged once).
    2. Judge overlap: SKIP and BUFFER_ONE record a SKIPPED run while the dependent has an
       open one (the scheduler owns the buffer; a dependency never queues behind a run).
    3. Insert the runs; one already there for (job, upstream execution) is left alone.
    4. Queue a `job.due` for each new PENDING run, an `execution.finished` for each SKIPPED.
    """
    ends = [end for end in finishes if end.status in FIRES]
    if not ends:
        return
    dependents = (
        await session.execute(
            select(CronJob, Project)
            .join(Project, Project.id == CronJob.project_id)
            .where(
                CronJob.user_id.in_(sorted({end.user_id for end in ends})),
                CronJob.depends_on.is_not(None),
                CronJob.deleted_at.is_(None),
                CronJob.is_enabled,
                Project.deleted_at.is_(None),
            )
            .order_by(CronJob.id)
            .with_for_update(of=CronJob)
        )
    ).all()
    pairs = [
        (end, job, project)
        for end in ends
        for job, project in dependents
        if job.user_id == end.user_id
        and any(
            entry["jobId"] == end.job_id and entry["on"] in FIRES[end.status]
            for entry in job.depends_on or ()
        )
    ]
    if not pairs:
        return
    busy = set(
        (
            await session.scalars(
                select(Execution.job_id).where(
                    Execution.job_id.in_(sorted({job.id for _, job, _ in pairs})),
                    Execution.status.in_(_OPEN),
                    # Runs ending in this very batch are not open any more.
                    Execution.id.not_in([end.execution_id for end in finishes]),
                )
            )
        ).all()
    )
    now = datetime.now(UTC)
    runs: list[tuple[Execution, Event | None, CronJob, Project]] = []
    traceparents: dict[str, str | None] = {}
    upstream = tracing.execution_parents()
    for end, job, project in pairs:
        skipped = job.overlap_policy != "ALLOW" and job.id in busy
        busy.add(job.id)
        run = await _run(session, end, job, skipped=skipped, now=now)
        run.trace_id, traceparents[run.id] = tracing.begin_run(
            run.id, job.id, Trigger.DEPENDENCY, link=upstream.get(end.execution_id)
        )
        due: Event | None = None
        if not skipped:
            due = job_due_event(job, project, run, now=now, upstream_execution_id=end.execution_id)
            run.deadline = due.deadline
        runs.append((run, due, job, project))
    inserted = await _insert(session, [run for run, _, _, _ in runs])
    events: list[Event] = []
    for run, due, job, project in runs:
        if run.id in inserted:
            events.append(
                due or await _skipped_event(session, run, job, project, public_url=public_url)
            )
    await outbox.enqueue(session, *events, traceparents=traceparents)


async def _run(
    session: AsyncSession, end: Ended, job: CronJob, *, skipped: bool, now: datetime
) -> Execution:
    return Execution(
        id=new_id("exec"),
        job_id=job.id,
        project_id=job.project_id,
        user_id=job.user_id,
        scheduled_for=now,
        trigger=Trigger.DEPENDENCY,
        triggered_by=None,
        upstream_execution_id=end.execution_id,
        status=ExecutionStatus.SKIPPED if skipped else ExecutionStatus.PENDING,
        attempt=1,
        window_start=await window_start_for(session, job, now),
        window_end=now,
        deadline=None,
        started_at=None,
        completed_at=now if skipped else None,
        duration=None,
        items_processed=0,
        items_success=0,
        items_failed=0,
        error_message="skipped: the previous run has not finished" if skipped else None,
        error_stack=None,
        skip_reason=None,
        metadata_={},
        missed_count=None,
        first_missed_at=None,
        last_missed_at=None,
        idempotency_key=None,
        request_hash=None,
        created_at=now,
        updated_at=now,
    )


async def _insert(session: AsyncSession, runs: list[Execution]) -> set[str]:
    """Insert the runs in one statement; return the ids of those not there already."""
    connection = await session.connection()
    dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    table = cast(Table, Execution.__table__)
    rows = [{column.name: getattr(run, key) for key, column in _COLUMNS.items()} for run in runs]
    # No conflict target: the only key a fresh id can meet is (job, upstream execution).
    statement = dialect.insert(table).values(rows).on_conflict_do_nothing().returning(table.c.id)
    return set((await connection.execute(statement)).scalars().all())


_COLUMNS = {
    attribute.key: column
    for attribute in Execution.__mapper__.column_attrs
    for column in attribute.columns
}


async def _skipped_event(
    session: AsyncSession, run: Execution, job: CronJob, project: Project, *, public_url: str
) -> Event:
    """Count a SKIPPED run in its job's counters and describe it for the notifier."""
    counted = (
        await session.execute(
            update(JobStatistics)
            .where(JobStatistics.job_id == job.id)
            .values(total_skipped=JobStatistics.total_skipped + 1, updated_at=run.completed_at)
            .returning(JobStatistics.consecutive_failures, JobStatistics.last_status)
        )
    ).first()
    metrics.execution_finished(run.status, run.trigger)
    return finished_event(
        run,
        job=job,
        project=project,
        consecutive_failures=counted.consecutive_failures if counted else 0,
        previous_status=(
            ExecutionStatus(counted.last_status) if counted and counted.last_status else None
        ),
        occurred_at=run.completed_at,
        public_url=public_url,
    )
