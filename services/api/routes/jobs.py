"""The seed's schedule endpoints: create, update, list, delete, toggle, trigger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response, status
from pydantic_core import to_json
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.api import fields, pg_render
from services.api.auth import UserDep, checks_token_in_query, owned_by, reading_as_caller
from services.api.dependencies import checked_dependencies, dependency_warnings
from services.api.deps import SessionDep, StateDep
from services.api.job_graph import job_graph
from services.api.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    cursor_position,
    keyset,
    keyset_params,
    split,
)
from services.api.problems import Problem, invalid
from services.api.quotas import ensure_room, ensure_trigger_budget
from services.api.records import job_of, project_of
from services.api.requests import CreateJob, ToggleJob, TriggerJob, UpdateJob
from services.api.schedules import resolve_schedule
from services.api.triggers import (
    find_by_idempotency_key,
    log_fired,
    open_execution_of,
    request_fingerprint,
    trigger_manually,
)
from services.api.views import (
    execution_view,
    job_row_view,
    job_view,
)
from services.api.webhook_jobs import new_secret, receiver_columns
from shared.db.notify import JOBS_CHANNEL, notify
from shared.db.schema import CronJob, JobStatistics
from shared.ids import new_id

router = APIRouter(prefix="/api/cron", tags=["schedules"])

JobId = Annotated[str, Path(max_length=40)]
POLICY_FIELDS = (
    "max_retries",
    "retry_delay",
    "timeout_seconds",
    "overlap_policy",
    "catchup_window",
    "jitter",
)


@router.post("/schedule", status_code=status.HTTP_201_CREATED, operation_id="createSchedule")
async def create_schedule(
    body: CreateJob, user: UserDep, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    """Create a job on one of your projects.

    A WEBHOOK job (`type: WEBHOOK`, with `webhookUrl`) is answered with `webhookSecret`, the
    secret its deliveries are signed with: in this answer only, herald keeps it encrypted and
    never shows it again (renew it with `POST /api/cron/schedules/{jobId}/webhook-secret`).
    """
    project = await project_of(session, user.id, body.project_id)
    await ensure_room(
        session,
        kind=CronJob,
        user_id=user.id,
        limit=state.settings.max_jobs_per_user,
        setting="HERALD_MAX_JOBS_PER_USER",
    )
    now = datetime.now(UTC)
    time_config = body.time_config.stored()
    schedule, next_run = resolve_schedule(
        frequency=body.frequency, time_config=time_config, schedule=body.schedule, now=now
    )
    receiver = receiver_columns(body.webhook_url, body.type, state.settings)
    secret = None
    if receiver:
        secret, receiver["webhook_secret_encrypted"] = new_secret(state.settings)
    job_id = new_id("cron")
    depends_on = await checked_dependencies(
        session, job_id=job_id, user_id=user.id, dependencies=body.depends_on
    )
    job = CronJob(
        id=job_id,
        project_id=project.id,
        user_id=user.id,
        type=body.type,
        name=body.name,
        description=body.description,
        frequency=body.frequency,
        time_config=time_config,
        schedule=schedule,
        is_enabled=body.is_enabled,
        conditions=body.conditions.stored() if body.conditions else None,
        webhook_triggers=_stored_triggers(body),
        depends_on=depends_on,
        next_run_at=next_run if body.is_enabled else None,
        created_at=now,
        updated_at=now,
        **receiver,
        **{field: value for field in POLICY_FIELDS if (value := getattr(body, field)) is not None},
    )
    session.add(job)
    await session.flush()
    session.add(JobStatistics.empty(job.id, job.user_id))
    await notify(session, JOBS_CHANNEL)
    await session.commit()
    view = await _single_view(session, job)
    if secret is not None:
        # In this answer only: herald keeps it encrypted and never shows it again.
        view["webhookSecret"] = secret
    return {"success": True, "data": view}


@router.patch("/schedule", operation_id="updateSchedule")
async def update_schedule(
    body: UpdateJob, user: UserDep, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    if not body.job_id:
        raise invalid("jobId", "required")
    job = await job_of(session, user.id, body.job_id, for_update=True)
    if body.type is not None and body.type != job.type:
        # A job's history is of one kind of result (posts, synced activity, digests) and
        # its statistics, windows and dependents were built on it; a job that did another
        # thing would mix them, so another type is another job.
        raise invalid(
            "type",
            f"a job's type cannot change (this job is {job.type}); "
            f"create a new job of type {body.type}",
        )
    changes = body.model_dump(exclude_unset=True)
    now = datetime.now(UTC)
    if "webhook_url" in changes:
        # A new receiver keeps the job's secret: renewing it is its own request.
        for column, value in receiver_columns(body.webhook_url, job.type, state.settings).items():
            setattr(job, column, value)
    for field in ("name", "description", *POLICY_FIELDS):
        if field in changes and changes[field] is not None:
            setattr(job, field, changes[field])
    if "conditions" in changes:
        # Given whole: what the body leaves out takes its default, null removes them.
        job.conditions = body.conditions.stored() if body.conditions else None
    if "webhook_triggers" in changes:
        job.webhook_triggers = _stored_triggers(body)
    if "depends_on" in changes:
        # Given whole, like conditions: null or [] removes them.
        job.depends_on = await checked_dependencies(
            session, job_id=job.id, user_id=user.id, dependencies=body.depends_on
        )
    if {"frequency", "time_config", "schedule"} & changes.keys():
        frequency = body.frequency or job.frequency
        time_config = body.time_config.stored() if body.time_config else job.time_config
        custom = (
            body.schedule
            if body.schedule is not None
            else (job.schedule if frequency == "CUSTOM" else None)
        )
        schedule, next_run = resolve_schedule(
            frequency=frequency, time_config=time_config, schedule=custom, now=now
        )
        job.frequency, job.time_config, job.schedule = frequency, time_config, schedule
        job.next_run_at = next_run if job.is_enabled else None
    if body.is_enabled is not None:
        _set_enabled(job, body.is_enabled, now)
    job.updated_at = now
    await notify(session, JOBS_CHANNEL)
    await session.commit()
    return {"success": True, "data": await _single_view(session, job)}


@router.post(
    "/schedules/{job_id}/webhook-secret",
    status_code=status.HTTP_201_CREATED,
    operation_id="renewScheduleWebhookSecret",
)
async def renew_webhook_secret(
    job_id: JobId, user: UserDep, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    """Make a WEBHOOK job a new signing secret, replacing the one before it.

    The secret is in this answer only: herald keeps it encrypted and never shows it again.
    Deliveries from now on are signed with it (`X-Herald-Signature-256`); a run already
    delivering may still sign with the old one. 409 for a job of another type.
    """
    job = await job_of(session, user.id, job_id, for_update=True)
    if job.type != "WEBHOOK":
        raise Problem(409, f"job {job.id} is a {job.type} job: only a WEBHOOK job signs deliveries")
    secret, job.webhook_secret_encrypted = new_secret(state.settings)
    job.updated_at = datetime.now(UTC)
    await session.commit()
    return {
        "success": True,
        "data": {
            "jobId": job.id,
            "secret": secret,
            "signatureHeader": "X-Herald-Signature-256",
            "deliveryHeader": "X-Herald-Delivery",
        },
    }


async def _single_view(session: SessionDep, job: CronJob) -> dict[str, Any]:
    """One job's view with what its dependencies lack (lists leave that out: a query a row)."""
    return {**job_view(job), "dependencyWarnings": await dependency_warnings(session, job)}


def _stored_triggers(body: CreateJob | UpdateJob) -> list[dict[str, Any]] | None:
    """The webhook triggers as kept on the job: each whole, or None for none."""
    if not body.webhook_triggers:
        return None
    return [trigger.stored() for trigger in body.webhook_triggers]


def _set_enabled(job: CronJob, enabled: bool, now: datetime) -> None:
    """Enable or disable; a re-enabled job schedules from now and keeps no backlog."""
    if enabled and not job.is_enabled:
        _, job.next_run_at = resolve_schedule(
            frequency=job.frequency,
            time_config=job.time_config,
            schedule=job.schedule if job.frequency == "CUSTOM" else None,
            now=now,
        )
        job.disabled_reason = None
    elif not enabled:
        job.next_run_at = None
    job.is_enabled = enabled


_JOBS = CronJob.__table__.c


_SCHEDULES = {
    (dialect, by_token, after): keyset(
        select(*pg_render.list_columns(dialect, fields.JOB)).where(
            owned_by(_JOBS.user_id, by_token), _JOBS.deleted_at.is_(None)
        ),
        created=_JOBS.created_at,
        row_id=_JOBS.id,
        after_cursor=after,
    )
    for dialect in ("postgresql", "sqlite")
    for by_token in (False, True)
    for after in (False, True)
}


@router.get("/schedules", operation_id="listSchedules", response_model=dict[str, Any])
@checks_token_in_query
async def list_schedules(
    request: Request,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Response:
    # A hot read: one statement (the token checked inside it), each row's view rendered
    # once (see `pg_render`).
    position = cursor_position(cursor)
    async with reading_as_caller(request) as (connection, caller):
        params = {**keyset_params(limit, position), **caller.params}
        dialect = connection.dialect.name
        statement = _SCHEDULES[dialect, caller.by_token, position is not None]
        rows = caller.saw(list((await connection.execute(statement, params)).all()))
    rows, next_cursor = split(rows, limit, lambda row: (row.created_at, row.id))
    if dialect == "postgresql":
        views = [row.view.encode() for row in rows]
    else:
        views = [to_json(job_row_view(row)) for row in rows]
    return Response(
        pg_render.page_body(views, next_cursor=next_cursor), media_type="application/json"
    )


@router.get("/schedules/{job_id}", operation_id="getSchedule")
async def get_schedule(job_id: JobId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return {
        "success": True,
        "data": await _single_view(session, await job_of(session, user.id, job_id)),
    }


@router.get("/schedules/{job_id}/graph", operation_id="getScheduleGraph")
async def get_schedule_graph(job_id: JobId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """The jobs this one runs after and the jobs it starts, transitively, with the edges.

    Each job: `id`, `name`, `isEnabled`, `deleted`, `level` (0 this job, below 0 its
    upstreams, above 0 its dependents; every edge goes from a lower level to a higher one).
    Each edge: `upstream`, `dependent` and `on` (onSuccess, onFailure, onCompletion). A
    deleted upstream is shown, and what it ran after is not.
    """
    job = await job_of(session, user.id, job_id)
    return {"success": True, "data": await job_graph(session, job)}


@router.delete("/schedules/{job_id}", operation_id="deleteSchedule")
async def delete_schedule(job_id: JobId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    job = await job_of(session, user.id, job_id, for_update=True)
    now = datetime.now(UTC)
    job.deleted_at, job.is_enabled, job.next_run_at, job.updated_at = now, False, None, now
    await session.execute(
        update(JobStatistics).where(JobStatistics.job_id == job.id).values(live=False)
    )
    await notify(session, JOBS_CHANNEL)
    await session.commit()
    return {"success": True, "data": {"id": job.id, "deleted": True}}


@router.patch("/schedules/{job_id}", operation_id="toggleSchedule")
async def toggle_schedule(
    job_id: JobId, body: ToggleJob, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    job = await job_of(session, user.id, job_id, for_update=True)
    now = datetime.now(UTC)
    _set_enabled(job, body.is_enabled, now)
    job.updated_at = now
    await notify(session, JOBS_CHANNEL)
    await session.commit()
    return {"success": True, "data": job_view(job)}


@router.post("/trigger", status_code=status.HTTP_202_ACCEPTED, operation_id="triggerSchedule")
async def trigger(
    body: TriggerJob,
    user: UserDep,
    session: SessionDep,
    state: StateDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="The same key returns the same execution; with another body, 422.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Run a job now (enabled or not), following its overlap policy.

    SKIP and BUFFER_ONE answer 409 while an execution of the job is PENDING or RUNNING (a
    manual run is never queued behind another); ALLOW always starts one. Past
    HERALD_MANUAL_TRIGGERS_PER_MINUTE runs of the job in a minute, 429 with Retry-After.
    """
    # The job's row lock serialises triggers of one job: the overlap check and the
    # idempotency look-up cannot race a concurrent trigger of the same job.
    job = await job_of(session, user.id, body.job_id, for_update=True)
    fingerprint = request_fingerprint(body.model_dump(by_alias=True))
    if idempotency_key is not None:
        replayed = await find_by_idempotency_key(session, user_id=user.id, key=idempotency_key)
        if replayed is not None:
            if replayed.request_hash != fingerprint:
                raise invalid("Idempotency-Key", "already used with a different request body")
            response.headers["Idempotent-Replayed"] = "true"
            return {"success": True, "data": execution_view(replayed)}
    if job.overlap_policy != "ALLOW":
        running = await open_execution_of(session, job_id=job.id)
        if running is not None:
            raise Problem(
                409,
                f"job already has an open execution ({running}); its overlap policy is "
                f"{job.overlap_policy}",
                extra={"executionId": running},
            )
    await ensure_trigger_budget(
        session,
        job_id=job.id,
        per_minute=state.settings.manual_triggers_per_minute,
        now=datetime.now(UTC),
    )
    project = await project_of(session, user.id, job.project_id)
    execution = await trigger_manually(
        session,
        job=job,
        project=project,
        user_id=user.id,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request with the same key (on another job) committed first.
        await session.rollback()
        if idempotency_key is None:
            raise
        replayed = await find_by_idempotency_key(session, user_id=user.id, key=idempotency_key)
        if replayed is None or replayed.request_hash != fingerprint:
            raise invalid("Idempotency-Key", "already used with a different request body") from None
        response.headers["Idempotent-Replayed"] = "true"
        return {"success": True, "data": execution_view(replayed)}
    log_fired(execution, job)
    return {"success": True, "data": execution_view(execution)}
