"""Apply consumed events in batches: one transaction, a fixed handful of statements per batch.

A batch claims its events in the inbox with one INSERT (an id already there is a duplicate,
dropped), locks and loads its executions with their job and project in one SELECT, runs the
state machine (`services.api.transitions`) in memory, then writes with one statement per
table: the timeline, the posts, the job counters, the projects' sync marks, the outbox, the
executions. So the statements per batch do not grow with the events in it, where applying
each event alone cost five transactions and about thirty statements per execution.

`EventBatcher` gathers the events the consumer is handed while a batch is being applied,
and settles each handler only after the batch committed (so the bus acks only then). A
batch that fails is applied again one event per transaction, so a poison event fails alone
and its batch-mates are applied; a lost database fails the whole batch at once, and the
bus holds every event until the database answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from prometheus_client import Histogram
from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from services.api import analytics, inbox, query_count, transitions
from services.api.alerts import store_alerts
from services.api.dependencies import Ended, start_dependents
from services.api.post_outcomes import apply_post_outcomes, is_post_outcome
from services.api.publish_runs import publish_scans, schedule_approved
from services.api.scan_reports import record_github_use, rename_moved_projects
from services.api.transitions import Changes, Finish, Run
from shared import metrics, outbox, tracing
from shared.db.engine import is_disconnect
from shared.db.notify import POSTS_CHANNEL, notify
from shared.db.schema import (
    Content,
    CronJob,
    Execution,
    ExecutionActivity,
    ExecutionStep,
    JobStatistics,
    Project,
)
from shared.events import (
    Event,
    ExecutionFinished,
    NotificationCreated,
    NotificationDelivery,
)
from shared.finished import finished_event
from shared.run_log import RunLine, ended_line, log_runs

log = structlog.get_logger(__name__)

# Events per transaction at most: enough to take whatever the consumer's prefetch delivered.
MAX_BATCH = 256

EVENTS_PER_BATCH = Histogram(
    "herald_api_events_per_batch",
    "Events the api applied in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

_EXECUTIONS = cast(Table, Execution.__table__)
_STEPS = cast(Table, ExecutionStep.__table__)
_CONTENTS = cast(Table, Content.__table__)
_ACTIVITY = cast(Table, ExecutionActivity.__table__)
_STATISTICS = cast(Table, JobStatistics.__table__)
_PROJECTS = cast(Table, Project.__table__)

# What the state machine may change on an execution; the batch writes them all back.
_CHANGEABLE = (
    "status",
    "attempt",
    "started_at",
    "completed_at",
    "duration",
    "items_processed",
    "items_success",
    "items_failed",
    "error_message",
    "error_stack",
    "skip_reason",
    "metadata",
    "deadline",
    "window_start",
    "window_end",
)
_ATTRIBUTES = {
    column.key: attribute.key
    for attribute in Execution.__mapper__.column_attrs
    for column in attribute.columns
}

_LOAD = (
    select(
        _EXECUTIONS,
        CronJob.name.label("job_name"),
        CronJob.timeout_seconds.label("job_timeout_seconds"),
        CronJob.type.label("job_type"),
        Project.name.label("project_name"),
        Project.notification_settings.label("project_notification_settings"),
        Project.publish_modes.label("project_publish_modes"),
    )
    .join(CronJob, CronJob.id == _EXECUTIONS.c.job_id)
    .join(Project, Project.id == _EXECUTIONS.c.project_id)
    .where(_EXECUTIONS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_EXECUTIONS.c.id)
    .with_for_update(of=_EXECUTIONS)
)
_LOAD_STATISTICS = (
    select(_STATISTICS)
    .where(_STATISTICS.c.job_id.in_(bindparam("ids", expanding=True)))
    .order_by(_STATISTICS.c.job_id)
    .with_for_update()
)
_LOCK_PROJECTS = (
    select(_PROJECTS.c.id)
    .where(_PROJECTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_PROJECTS.c.id)
    .with_for_update()
)
_UPDATE_EXECUTIONS = update(_EXECUTIONS).where(_EXECUTIONS.c.id == bindparam("key_id"))
_UPDATE_STATISTICS = update(_STATISTICS).where(_STATISTICS.c.job_id == bindparam("key_job_id"))
# A compare-and-set: the mark only moves forward, whoever else completes a run of the project.
_SYNC_PROJECTS = update(_PROJECTS).where(
    _PROJECTS.c.id == bindparam("key_id"),
    or_(
        _PROJECTS.c.last_synced_at.is_(None),
        _PROJECTS.c.last_synced_at < bindparam("key_window_end"),
    ),
)


async def apply_events(
    sessions: async_sessionmaker[AsyncSession], events: Sequence[Event], *, public_url: str
) -> None:
    """Apply consumed events in one transaction, each once however often it is delivered."""
    finished: list[Finish] = []
    async with sessions() as session, session.begin():
        connection = await session.connection()
        query_count.install(connection.sync_engine)
        dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
        pipeline = [
            event
            for event in events
            if not isinstance(event, NotificationCreated | NotificationDelivery)
            and not is_post_outcome(event)
        ]
        with query_count.tallying() as tally:
            with query_count.on_behalf_of(event.execution_id for event in pipeline):
                fresh = await inbox.claim(connection, dialect, events)
            if not fresh:
                return
            fresh_ids = {event.event_id for event in fresh}
            pipeline = [event for event in pipeline if event.event_id in fresh_ids]
            if pipeline:
                finished = await _apply_pipeline(
                    session, connection, dialect, pipeline, tally, public_url=public_url
                )
        posts = [event for event in fresh if is_post_outcome(event)]
        outcomes = await apply_post_outcomes(connection, posts, public_url=public_url)
        await store_alerts(connection, dialect, [*fresh, *outcomes.alerts])
        await outbox.enqueue(session, *outcomes.events)
    for finish in finished:
        metrics.execution_finished(
            finish.status,
            finish.row["trigger"],
            finish.row["started_at"],
            finish.at,
            trace_id=finish.row.get("trace_id"),
        )
    log_runs(log, "runs ended", [_ended(finish) for finish in finished])


def _ended(finish: Finish) -> RunLine:
    row = finish.row
    return ended_line(
        finish.status,
        execution_id=row["id"],
        job_id=row["job_id"],
        job_name=finish.run.job_name,
        trigger=row["trigger"],
        scheduled_for=row["scheduled_for"],
        duration_ms=row["duration"],
        items_processed=row["items_processed"],
        items_success=row["items_success"],
        items_failed=row["items_failed"],
        reason=row["error_message"],
        trace_id=row.get("trace_id"),
    )


async def _apply_pipeline(
    session: AsyncSession,
    connection: AsyncConnection,
    dialect: Any,
    events: list[Event],
    tally: Counter[str],
    *,
    public_url: str,
) -> list[Finish]:
    """Run the state machine over the events' executions and write what changed.

    Each statement runs `on_behalf_of` the executions it serves, and counts once for each
    of them in `tally` (`metadata.dbQueries`; the inbox claim is already in it).
    """
    with query_count.on_behalf_of({event.execution_id for event in events}):
        runs = await _load(connection, {event.execution_id for event in events})
    publishing = publish_scans(events, runs)
    if publishing:
        now = datetime.now(UTC)
        for scan in publishing:
            publish_run = runs[scan.execution_id]
            with query_count.on_behalf_of([scan.execution_id]):
                publish_run.posts_scheduled = await schedule_approved(
                    connection, publish_run, now=now
                )
        if any(runs[scan.execution_id].posts_scheduled for scan in publishing):
            await notify(session, POSTS_CHANNEL)
    changes = Changes()
    applied: set[str] = set()
    for event in events:
        run = runs.get(event.execution_id)
        if run is None:
            log.warning(
                "event for an unknown execution ignored",
                routing_key=event.routing_key,
                execution_id=event.execution_id,
            )
            continue
        applied.add(event.execution_id)
        transitions.apply(run, event, changes, now=datetime.now(UTC))
    if not applied:
        return []
    if changes.contents:
        with query_count.on_behalf_of(row["execution_id"] for row in changes.contents):
            await connection.execute(
                dialect.insert(_CONTENTS).on_conflict_do_nothing(), changes.contents
            )
        if any(row.get("state") == "SCHEDULED" for row in changes.contents):
            await notify(session, POSTS_CHANNEL)  # auto-published: the scheduler looks now
    if changes.steps:
        with query_count.on_behalf_of(row["execution_id"] for row in changes.steps):
            await connection.execute(_STEPS.insert(), changes.steps)
    if changes.activity:
        with query_count.on_behalf_of(row["execution_id"] for row in changes.activity):
            # Keyed by (execution, position): a scan applied again records nothing twice.
            await connection.execute(
                dialect.insert(_ACTIVITY).on_conflict_do_nothing(), changes.activity
            )
    await _lock_projects(connection, changes)
    if changes.digests:
        await analytics.attach_digests(connection, changes, runs)
    if changes.finishes:
        await _finish(session, connection, changes.finishes, public_url=public_url)
    now = datetime.now(UTC)
    if changes.moves:
        await rename_moved_projects(
            connection, dialect, changes.moves, public_url=public_url, now=now
        )
    if changes.github_uses:
        await record_github_use(connection, changes.github_uses)
    await connection.execute(
        _UPDATE_EXECUTIONS,
        [
            {
                "key_id": execution_id,
                **{column: runs[execution_id].row[column] for column in _CHANGEABLE},
                "metadata": {
                    **runs[execution_id].row["metadata"],
                    # This update counts too: it cannot be tallied before it runs.
                    "dbQueries": int(runs[execution_id].row["metadata"].get("dbQueries", 0))
                    + tally[execution_id]
                    + 1,
                },
                "updated_at": now,
            }
            for execution_id in sorted(applied)
        ],
    )
    return changes.finishes


async def _lock_projects(connection: AsyncConnection, changes: Changes) -> None:
    """Lock the projects this batch writes, in id order, before writing any of them.

    Their sync marks, renames and credential snapshots are separate statements: two batches
    reaching the same two projects in opposite orders would deadlock, and one of them would
    be applied again event by event. Locked first, in one order, they wait for each other.
    """
    writes: dict[str, set[str]] = {}
    for move in changes.moves:
        writes.setdefault(move.project_id, set()).add(move.execution_id)
    for project_id, use in changes.github_uses.items():
        writes.setdefault(project_id, set()).add(use.execution_id)
    for finish in changes.finishes:
        if finish.status == "COMPLETED":
            writes.setdefault(finish.row["project_id"], set()).add(finish.row["id"])
    # One project cannot be taken in two orders; SQLite has one writer at a time anyway.
    if len(writes) < 2 or connection.dialect.name != "postgresql":
        return
    with query_count.on_behalf_of(set().union(*writes.values())):
        await connection.execute(_LOCK_PROJECTS, {"ids": sorted(writes)})


async def _load(connection: AsyncConnection, ids: Iterable[str]) -> dict[str, Run]:
    rows = (await connection.execute(_LOAD, {"ids": sorted(ids)})).mappings().all()
    return {
        row["id"]: Run(
            row={column.name: row[column.name] for column in _EXECUTIONS.columns},
            job_name=row["job_name"],
            timeout_seconds=row["job_timeout_seconds"],
            project_name=row["project_name"],
            notification_settings=row["project_notification_settings"],
            publish_modes=row["project_publish_modes"] or {},
            job_type=row["job_type"],
        )
        for row in rows
    }


async def _finish(
    session: AsyncSession,
    connection: AsyncConnection,
    finishes: list[Finish],
    *,
    public_url: str,
) -> None:
    """Count finished executions in their jobs' counters and write `execution.finished`."""
    ids = [finish.row["id"] for finish in finishes]
    jobs = sorted({finish.row["job_id"] for finish in finishes})
    with query_count.on_behalf_of(ids):
        loaded = (await connection.execute(_LOAD_STATISTICS, {"ids": jobs})).mappings().all()
    counters = {row["job_id"]: dict(row) for row in loaded}
    missing = [job_id for job_id in jobs if job_id not in counters]
    owners = {finish.row["job_id"]: finish.row["user_id"] for finish in finishes}
    for job_id in missing:
        counters[job_id] = _empty_counters(job_id, owners[job_id])
    events: list[ExecutionFinished] = []
    for finish in finishes:
        stats = counters[finish.row["job_id"]]
        previous = transitions.count_finished(stats, finish)
        events.append(
            _finished_event(
                finish,
                consecutive_failures=stats["consecutive_failures"],
                previous_status=previous,
                public_url=public_url,
            )
        )

    def of_jobs(job_ids: Iterable[str]) -> set[str]:
        wanted = set(job_ids)
        return {finish.row["id"] for finish in finishes if finish.row["job_id"] in wanted}

    now = datetime.now(UTC)
    if missing:
        with query_count.on_behalf_of(of_jobs(missing)):
            await connection.execute(
                _STATISTICS.insert(),
                [{**counters[job_id], "updated_at": now} for job_id in missing],
            )
    present = [job_id for job_id in jobs if job_id not in missing]
    if present:
        with query_count.on_behalf_of(of_jobs(present)):
            await connection.execute(
                _UPDATE_STATISTICS,
                [
                    {
                        "key_job_id": job_id,
                        **{
                            key: value
                            for key, value in counters[job_id].items()
                            if key not in ("job_id", "updated_at")
                        },
                        "updated_at": now,
                    }
                    for job_id in present
                ],
            )
    marks: dict[str, datetime] = {}
    for finish in finishes:
        if finish.status == "COMPLETED":
            project, window_end = finish.row["project_id"], finish.row["window_end"]
            marks[project] = max(marks.get(project, window_end), window_end)
    if marks:
        completed = (finish.row["id"] for finish in finishes if finish.status == "COMPLETED")
        with query_count.on_behalf_of(completed):
            await connection.execute(
                _SYNC_PROJECTS,
                [
                    {"key_id": project, "key_window_end": mark, "last_synced_at": mark}
                    for project, mark in sorted(marks.items())
                ],
            )
    with query_count.on_behalf_of(ids):
        await outbox.enqueue(session, *events)
        # In this transaction: an upstream's end and the runs it starts commit together.
        await start_dependents(
            session, [Ended.of_finish(finish) for finish in finishes], public_url=public_url
        )


def _empty_counters(job_id: str, user_id: str) -> dict[str, Any]:
    empty = JobStatistics.empty(job_id, user_id)
    return {column.key: getattr(empty, column.key) for column in JobStatistics.__table__.columns}


def _finished_event(
    finish: Finish,
    *,
    consecutive_failures: int,
    previous_status: Any,
    public_url: str,
) -> ExecutionFinished:
    run = finish.run
    return finished_event(
        Execution(**{_ATTRIBUTES[key]: value for key, value in finish.row.items()}),
        job=CronJob(id=finish.row["job_id"], name=run.job_name, type=run.job_type),
        project=Project(
            id=finish.row["project_id"],
            name=run.project_name,
            notification_settings=run.notification_settings,
        ),
        consecutive_failures=consecutive_failures,
        previous_status=previous_status,
        occurred_at=finish.at,
        public_url=public_url,
        posts=finish.posts,
    )


# How long a stopping api lets the batch in hand commit: a batch is one short transaction.
CLOSE_GRACE_S = 5.0


class EventBatcher:
    """Apply the events handed in concurrently together, a batch per transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        public_url: str,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._sessions = sessions
        self._public_url = public_url
        self._max_batch = max_batch
        self._waiting: list[tuple[Event, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None
        # The trace context each waiting event was handed in with (tracing on), by event id.
        self._handed_in: dict[str, str | None] = {}

    async def apply(self, event: Event) -> None:
        """Apply an event; return once the transaction that applied it committed."""
        settled = asyncio.get_running_loop().create_future()
        if tracing.enabled():
            self._handed_in[event.event_id] = tracing.traceparent()
        self._waiting.append((event, settled))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        try:
            await settled
        finally:
            self._handed_in.pop(event.event_id, None)  # a handler cancelled while waiting

    async def close(self, grace: float = CLOSE_GRACE_S) -> None:
        """Stop: the events not yet in a batch are handed back (their messages stay unacked
        and come again); the batch being applied may commit within `grace`, else it is
        cancelled and rolled back. Either way its connection is back in the pool after."""
        for _, settled in self._waiting:
            settled.cancel()
        self._waiting.clear()
        draining = self._draining
        if draining is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(draining), grace)
        except TimeoutError:
            draining.cancel()
        await asyncio.gather(draining, return_exceptions=True)

    async def _drain(self) -> None:
        # The task inherits the context of the handler that started it: a batch belongs to
        # no one event's trace (each gets its own span in `_apply`).
        with tracing.attached(None):
            await self._drain_batches()

    async def _drain_batches(self) -> None:
        try:
            # Events handed in while a batch is applied make up the next one.
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                # A handler cancelled meanwhile (shutdown) leaves its message unacked.
                batch = [(event, settled) for event, settled in batch if not settled.done()]
                if batch:
                    await self._apply(batch)
        finally:
            self._draining = None

    async def _apply(self, batch: list[tuple[Event, asyncio.Future[None]]]) -> None:
        if not tracing.enabled():
            await self._apply_batch(batch)
            return
        handed_in = [
            (event.routing_key, event.execution_id, self._handed_in.pop(event.event_id, None))
            for event, _ in batch
        ]
        with tracing.applying(handed_in):
            await self._apply_batch(batch)

    async def _apply_batch(self, batch: list[tuple[Event, asyncio.Future[None]]]) -> None:
        EVENTS_PER_BATCH.observe(len(batch))
        try:
            await apply_events(
                self._sessions, [event for event, _ in batch], public_url=self._public_url
            )
        except Exception as exc:
            if len(batch) == 1 or is_disconnect(exc):
                for _, settled in batch:
                    _settle(settled, exc)
                return
            log.warning(
                "batch of events failed; applying them one by one",
                events=len(batch),
                error=repr(exc),
            )
            for event, settled in batch:
                if settled.done():
                    continue
                try:
                    await apply_events(self._sessions, [event], public_url=self._public_url)
                except Exception as alone:
                    _settle(settled, alone)
                else:
                    _settle(settled, None)
            return
        except BaseException as exc:
            for _, settled in batch:
                _settle(settled, exc)
            raise
        for _, settled in batch:
            _settle(settled, None)


def _settle(settled: asyncio.Future[None], outcome: BaseException | None) -> None:
    if settled.done():
        return
    if outcome is None:
        settled.set_result(None)
    else:
        settled.set_exception(outcome)
