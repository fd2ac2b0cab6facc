"""`herald export` / `herald import`: projects and jobs from one herald database to another.

The way from the standalone mode to the distributed one: export from the SQLite file, import
into PostgreSQL. Users travel by email (found or created), projects and jobs keep their ids,
so importing the same file twice changes nothing. A job's next run is computed afresh at
import, so the new scheduler neither replays nor reports as missed the slots that passed
meanwhile. History (executions, posts, alerts) stays where it was. Webhook URLs, GitHub
tokens and publishing credentials travel as stored, encrypted: the importing side needs the
same HERALD_SECRET_KEY. An export written before the publishing webhook's URL was encrypted
carries it in clear in its settings: it is sealed on import, with that key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import installation_grants
from shared.accounts import ensure_user
from shared.db.schema import CronJob, JobStatistics, Project, PublishingCredential, User
from shared.db.types import UTCDateTime
from shared.destinations import webhook_host
from shared.dispatch import next_run_after
from shared.secrets import SecretKeyError, encrypt

log = structlog.get_logger(__name__)

FORMAT = "herald-export"
VERSION = 1
# Columns the importing side sets itself: owners by email, scheduling state afresh.
_PROJECT_SKIPPED = {"user_id"}
_JOB_SKIPPED = {"user_id", "project_id", "next_run_at", "last_run_at", "buffered_execution_id"}


class TransferError(ValueError):
    """An export file this herald cannot import."""


async def export_records(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Every live project and job, grouped by their owner's email, as JSON-ready data."""
    async with sessions() as session:
        users = (await session.scalars(select(User).order_by(User.email))).all()
        projects = (
            await session.scalars(
                select(Project).where(Project.deleted_at.is_(None)).order_by(Project.created_at)
            )
        ).all()
        jobs = (
            await session.scalars(
                select(CronJob).where(CronJob.deleted_at.is_(None)).order_by(CronJob.created_at)
            )
        ).all()
        credentials = (
            await session.scalars(
                select(PublishingCredential).order_by(
                    PublishingCredential.project_id, PublishingCredential.network
                )
            )
        ).all()
    owners: dict[str, dict[str, Any]] = {}
    for user in users:
        owners[user.id] = {
            "email": user.email,
            "name": user.name,
            "timezone": user.timezone,
            "projects": [],
        }
    by_project: dict[str, dict[str, Any]] = {}
    for project in projects:
        record = _columns(project, _PROJECT_SKIPPED) | {"jobs": [], "publishing": []}
        by_project[project.id] = record
        owners[project.user_id]["projects"].append(record)
    for job in jobs:
        if job.project_id in by_project:
            by_project[job.project_id]["jobs"].append(_columns(job, _JOB_SKIPPED))
    for credential in credentials:
        if credential.project_id in by_project:
            by_project[credential.project_id]["publishing"].append(
                _columns(credential, {"project_id"})
            )
    return {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": datetime.now(UTC).isoformat(),
        "users": [owner for owner in owners.values() if owner["projects"]],
    }


async def import_records(
    sessions: async_sessionmaker[AsyncSession], data: dict[str, Any], *, secret_key: str = ""
) -> tuple[int, int]:
    """Create the exported projects and jobs that do not exist yet; return (projects, jobs)."""
    if data.get("format") != FORMAT:
        raise TransferError('not a herald export (no "format": "herald-export")')
    if data.get("version") != VERSION:
        raise TransferError(f"export version {data.get('version')!r}; this herald reads {VERSION}")
    now = datetime.now(UTC)
    created_projects = created_jobs = 0
    async with sessions() as session, session.begin():
        for owner in data.get("users", []):
            user = await ensure_user(
                session,
                email=owner["email"],
                name=owner.get("name", ""),
                timezone=owner.get("timezone", "UTC"),
            )
            for record in owner.get("projects", []):
                jobs = record.pop("jobs", [])
                publishing = record.pop("publishing", [])
                if await session.get(Project, record["id"]) is None:
                    await _keep_granted_installation(session, record, user_id=user.id)
                    session.add(Project(**_values(Project, record), user_id=user.id))
                    created_projects += 1
                    await session.flush()
                for credential in publishing:
                    key = (record["id"], credential.get("network"))
                    if await session.get(PublishingCredential, key) is None:
                        values = _values(PublishingCredential, credential)
                        _seal_webhook_url(values, secret_key)
                        session.add(PublishingCredential(**values, project_id=record["id"]))
                for job_record in jobs:
                    if await session.get(CronJob, job_record["id"]) is not None:
                        continue
                    job = CronJob(
                        **_values(CronJob, job_record), user_id=user.id, project_id=record["id"]
                    )
                    if job.is_enabled:
                        job.next_run_at = next_run_after(job, now)
                    session.add(job)
                    await session.flush()
                    session.add(
                        JobStatistics.empty(job.id, job.user_id, live=job.deleted_at is None)
                    )
                    created_jobs += 1
    return created_projects, created_jobs


def _seal_webhook_url(values: dict[str, Any], secret_key: str) -> None:
    """Move a clear webhook URL (an export from before migration 0022) into `url_encrypted`."""
    settings = dict(values.get("settings") or {})
    url = settings.pop("url", None)
    if not isinstance(url, str) or values.get("url_encrypted"):
        return
    try:
        values["url_encrypted"] = encrypt(url, secret_key)
    except SecretKeyError as exc:
        raise TransferError(f"a publishing webhook's URL cannot be sealed: {exc.message}") from None
    values["settings"] = settings | {"urlHost": webhook_host(url)}


def _columns(row: Project | CronJob | PublishingCredential, skipped: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in type(row).__mapper__.column_attrs:
        if attribute.key in skipped:
            continue
        value = getattr(row, attribute.key)
        values[attribute.key] = value.isoformat() if isinstance(value, datetime) else value
    return values


def _values(
    model: type[Project] | type[CronJob] | type[PublishingCredential], record: dict[str, Any]
) -> dict[str, Any]:
    """The record's known columns, datetimes parsed back (unknown keys are ignored)."""
    known = {attribute.key: attribute for attribute in model.__mapper__.column_attrs}
    values: dict[str, Any] = {}
    for key, value in record.items():
        if key not in known:
            continue
        if isinstance(value, str) and isinstance(known[key].columns[0].type, UTCDateTime):
            value = datetime.fromisoformat(value)
        values[key] = value
    return values


async def _keep_granted_installation(
    session: AsyncSession, record: dict[str, Any], *, user_id: str
) -> None:
    """Drop a project's GitHub App installation unless its owner holds a grant of it here.

    Grants are not exported (they are an operator's decision on each server): an imported
    project reads with its own token or the server's until an operator grants and it
    connects again, as after the migration that introduced grants.
    """
    installation_id = record.get("github_installation_id")
    if installation_id is None:
        return
    if await installation_grants.holds_grant(
        session, installation_id=int(installation_id), user_id=user_id
    ):
        return
    log.warning(
        "imported project's GitHub App installation dropped: not granted here",
        project_id=record.get("id"),
        installation_id=installation_id,
    )
    record.update(
        github_installation_id=None,
        github_installation_status=None,
        github_credential=None,
        github_rate_limit=None,
    )
