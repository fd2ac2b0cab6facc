"""GitHub webhook deliveries: signed by the project's secret, they run the jobs they trigger;
signed by the App's secret (no project named), they say what its installations may read.

Public (no bearer credential): the signature over the raw body is the credential. Nothing
is read from the body, and nothing written, before the signature verifies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.app_events import apply_app_event, ignored_because, installation_of
from services.api.deps import SessionDep, StateDep
from services.api.problems import Problem, invalid
from services.api.quotas import webhook_budget_spent, webhook_room
from services.api.triggers import log_fired, open_execution_of, trigger_by_webhook
from services.api.webhook_triggers import event_release, event_start, fires
from shared.db.schema import CronJob, GitHubAppDelivery, GitHubDelivery, Project
from shared.db.upsert import insert_ignore
from shared.secrets import SecretKeyError, decrypt
from shared.signatures import signature_matches

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

PATH = "/api/webhooks/github"
#: GitHub sends no payload larger than this (it does not fire the webhook instead).
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024

UNSIGNED = "X-Hub-Signature-256 does not sign this body with the project's webhook secret"
APP_UNSIGNED = (
    "X-Hub-Signature-256 does not sign this body with herald's GitHub App webhook secret "
    "(HERALD_GITHUB_APP_WEBHOOK_SECRET); a project's hook names it (?project=)"
)


@router.post("/github", operation_id="receiveGitHubWebhook")
async def receive_github(
    request: Request,
    session: SessionDep,
    state: StateDep,
    project_id: Annotated[
        str | None,
        Query(
            alias="project",
            max_length=40,
            description="The project the hook is for; absent: herald's GitHub App's own hook.",
        ),
    ] = None,
    event: Annotated[str | None, Header(alias="X-GitHub-Event", max_length=64)] = None,
    delivery_id: Annotated[str | None, Header(alias="X-GitHub-Delivery", max_length=64)] = None,
    signature: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
) -> dict[str, Any]:
    """Run the project's jobs a signed GitHub delivery triggers, each by its overlap policy.

    401 unless `X-Hub-Signature-256` signs the raw body with the project's webhook secret
    (then nothing is recorded); `ping` answers 200 and records nothing; a delivery id seen
    before answers 200 and runs nothing (`duplicate`). A job whose policy is not ALLOW and
    that has an open execution is skipped, not queued; so is a job past the project's
    HERALD_WEBHOOK_RUNS_PER_MINUTE (`skipped[].budget`).

    Without `project`, the delivery is the App's own (`installation`,
    `installation_repositories`), signed with `HERALD_GITHUB_APP_WEBHOOK_SECRET`.
    """
    body = await _payload(request)
    if project_id is None:
        app_secret = state.settings.github_app_webhook_secret.get_secret_value()
        if not app_secret or not signature_matches(app_secret, body, signature):
            raise Problem(401, APP_UNSIGNED)
        if event == "ping":
            return {"success": True, "data": {"event": "ping"}}
        return await _app_delivery(session, *_headed(event, delivery_id), _parsed(body))
    secret = await _secret_of(session, project_id, state.settings.secret_key.get_secret_value())
    if secret is None or not signature_matches(secret, body, signature):
        raise Problem(401, UNSIGNED)
    if event == "ping":
        return {"success": True, "data": {"event": "ping"}}
    event, delivery_id = _headed(event, delivery_id)
    now = datetime.now(UTC)
    key = {"project_id": project_id, "delivery_id": delivery_id, "event": event, "received_at": now}
    try:
        payload = _parsed(body)
    except Problem as refused:
        # Signed by the project, so worth a line in its deliveries: why nothing ran.
        if await insert_ignore(
            session,
            GitHubDelivery.__table__,  # type: ignore[arg-type]
            {**key, "outcome": "refused", "reason": refused.detail},
        ):
            await session.commit()
        raise
    action = payload.get("action")
    answer = {"event": event, "delivery": delivery_id, "duplicate": False}
    recorded = await insert_ignore(
        session,
        GitHubDelivery.__table__,  # type: ignore[arg-type]
        {**key, "action": action[:64] if isinstance(action, str) else None},
    )
    if not recorded:
        await _count_redelivery(session, project_id, delivery_id, now)
        return {"success": True, "data": {**answer, "duplicate": True, "executions": []}}
    # The project's row first, then its jobs' (`_triggered_jobs`): the budget below is
    # counted under it; a manual trigger locks a job alone, so the order cannot deadlock.
    project = (
        await session.scalars(select(Project).where(Project.id == project_id).with_for_update())
    ).one()
    per_minute = state.settings.webhook_runs_per_minute
    room = await webhook_room(session, project_id=project_id, per_minute=per_minute, now=now)
    fired, skipped = [], []
    for job in await _triggered_jobs(session, project_id, event, payload):
        if job.overlap_policy != "ALLOW":
            running = await open_execution_of(session, job_id=job.id)
            if running is not None:
                skipped.append({"jobId": job.id, "openExecutionId": running})
                continue
        if room is not None:
            if room <= 0:
                skipped.append({"jobId": job.id, "budget": webhook_budget_spent(per_minute)})
                continue
            room -= 1
        execution = await trigger_by_webhook(
            session,
            job=job,
            project=project,
            delivery_id=delivery_id,
            event=event,
            event_start=event_start(event, payload),
            now=now,
            release=event_release(event, payload),
        )
        fired.append((execution, job))
    started = [{"jobId": job.id, "executionId": execution.id} for execution, job in fired]
    await session.execute(
        update(GitHubDelivery)
        .where(GitHubDelivery.project_id == project_id, GitHubDelivery.delivery_id == delivery_id)
        .values(
            outcome="started" if fired else "ignored",
            reason=None if fired else _why_nothing_ran(event, action, skipped),
            executions={"started": started, "skipped": skipped},
        )
    )
    try:
        await session.commit()
    except IntegrityError:
        # The same delivery, arriving twice at once, committed first on the other request.
        await session.rollback()
        return {"success": True, "data": {**answer, "duplicate": True, "executions": []}}
    for execution, job in fired:
        log_fired(execution, job)
    return {"success": True, "data": {**answer, "executions": started, "skipped": skipped}}


def _why_nothing_ran(event: str, action: Any, skipped: list[dict[str, str]]) -> str:
    spent = [entry["budget"] for entry in skipped if "budget" in entry]
    if spent:
        return f"{len(skipped)} job(s) it triggers did not run: {spent[0]}"
    if skipped:
        return (
            f"{len(skipped)} job(s) it triggers had a run open and do not overlap "
            "(overlap policy SKIP or BUFFER_ONE)"
        )
    what = f"{event} {action}" if isinstance(action, str) else event
    return f"no enabled job has a webhook trigger this {what} delivery matches"


async def _count_redelivery(
    session: AsyncSession, project_id: str, delivery_id: str, now: datetime
) -> None:
    """GitHub sent a delivery again (by hand, or twice at once): counted, never run."""
    await session.execute(
        update(GitHubDelivery)
        .where(GitHubDelivery.project_id == project_id, GitHubDelivery.delivery_id == delivery_id)
        .values(redeliveries=GitHubDelivery.redeliveries + 1, last_redelivered_at=now)
    )
    await session.commit()


def _headed(event: str | None, delivery_id: str | None) -> tuple[str, str]:
    """The event and delivery id every delivery names."""
    if not event:
        raise invalid("X-GitHub-Event", "required")
    if not delivery_id:
        raise invalid("X-GitHub-Delivery", "required")
    return event, delivery_id


def _parsed(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            "body", "not JSON: set the webhook's content type to application/json"
        ) from None
    if not isinstance(payload, dict):
        raise invalid("body", "not a JSON object")
    return payload


async def _app_delivery(
    session: AsyncSession, event: str, delivery_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Apply an App delivery once (`services.api.app_events`); a redelivery changes nothing."""
    action = payload.get("action")
    installation_id = installation_of(payload)
    answer: dict[str, Any] = {
        "event": event,
        "delivery": delivery_id,
        "duplicate": False,
        "installationId": installation_id,
    }
    reason = ignored_because(event, action)
    if reason is None and installation_id is None:
        raise invalid("body.installation.id", "required: a positive integer")
    now = datetime.now(UTC)
    recorded = await insert_ignore(
        session,
        GitHubAppDelivery.__table__,  # type: ignore[arg-type]
        {
            "delivery_id": delivery_id,
            "event": event,
            "action": action[:64] if isinstance(action, str) else None,
            "installation_id": installation_id,
            "received_at": now,
        },
    )
    if not recorded:
        return {"success": True, "data": {**answer, "duplicate": True}}
    if reason is not None or installation_id is None:
        await session.commit()
        return {"success": True, "data": {**answer, "ignored": reason}}
    applied = await apply_app_event(session, event, payload, installation_id, now=now)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return {"success": True, "data": {**answer, "duplicate": True}}
    log.info(
        "github app event applied",
        github_event=event,
        action=action,
        installation_id=installation_id,
        status=applied.status,
        projects=len(applied.projects),
    )
    return {
        "success": True,
        "data": {**answer, "status": applied.status or "active", "projects": applied.projects},
    }


async def _payload(request: Request) -> bytes:
    """The raw body, refused past GitHub's own cap (the signature is over these bytes)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            raise Problem(413, f"request body larger than {MAX_PAYLOAD_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _secret_of(session: AsyncSession, project_id: str, key: str) -> str | None:
    """The live project's webhook secret in clear, or None when it has none."""
    encrypted = await session.scalar(
        select(Project.github_webhook_secret_encrypted).where(
            Project.id == project_id, Project.deleted_at.is_(None)
        )
    )
    if not encrypted:
        return None
    try:
        return decrypt(encrypted, key)
    except SecretKeyError as exc:
        # Not the sender's fault: GitHub shows this answer in the hook's delivery log.
        log.error("webhook secret unreadable", project_id=project_id, error=exc.message)
        raise Problem(503, "this server cannot read the project's webhook secret") from None


async def _triggered_jobs(
    session: AsyncSession, project_id: str, event: str, payload: dict[str, Any]
) -> list[CronJob]:
    """The project's live, enabled jobs one of whose triggers fires, locked in id order.

    The row locks serialise this with manual triggers of the same jobs, so the overlap
    check cannot race them; id order keeps two deliveries from deadlocking.
    """
    jobs = await session.scalars(
        select(CronJob)
        .where(
            CronJob.project_id == project_id,
            CronJob.deleted_at.is_(None),
            CronJob.is_enabled,
            CronJob.webhook_triggers.is_not(None),
        )
        .order_by(CronJob.id)
        .with_for_update()
    )
    return [
        job
        for job in jobs
        if any(fires(trigger, event, payload) for trigger in job.webhook_triggers or [])
    ]
