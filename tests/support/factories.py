"""Records and events the tests need, written straight to the database or built whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.accounts import ensure_user
from shared.db.engine import create_engine, session_factory
from shared.db.schema import CronJob, GitHubInstallationGrant, JobStatistics, Project
from shared.events import JobDue, Repository, Trigger
from shared.ids import new_id
from shared.scheduling import preset_expression
from shared.tokens import issue_token


async def user_with_token(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    """Create a user; return (user id, bearer token)."""
    async with sessions() as session, session.begin():
        user = await ensure_user(session, email=f"{new_id('u')}@example.com", name="Tester")
        token = await issue_token(session, user_id=user.id)
        return user.id, token


async def grant_installation(
    sessions: async_sessionmaker[AsyncSession], user_id: str, installation_id: int
) -> None:
    """Grant the user an installation of herald's GitHub App, as `herald installations grant`."""
    async with sessions() as session, session.begin():
        session.add(
            GitHubInstallationGrant(
                installation_id=installation_id, user_id=user_id, granted_by="tests"
            )
        )


async def project(
    sessions: async_sessionmaker[AsyncSession], user_id: str, **fields: Any
) -> Project:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": new_id("prj"),
        "user_id": user_id,
        "name": "demo",
        "platforms": ["x", "blog"],
        "notification_settings": {},
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    async with sessions() as session, session.begin():
        row = Project(**values)
        session.add(row)
    return row


async def job(
    sessions: async_sessionmaker[AsyncSession],
    project_row: Project,
    *,
    next_run_at: datetime | None,
    **fields: Any,
) -> CronJob:
    now = datetime.now(UTC)
    time_config = fields.pop("time_config", {"hour": 9, "minute": 0, "timezone": "UTC"})
    values: dict[str, Any] = {
        "id": new_id("cron"),
        "project_id": project_row.id,
        "user_id": project_row.user_id,
        "name": "daily",
        "frequency": "DAILY",
        "time_config": time_config,
        "schedule": fields.pop("schedule", None) or preset_expression("DAILY", time_config),
        "next_run_at": next_run_at,
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    async with sessions() as session, session.begin():
        row = CronJob(**values)
        session.add(row)
        await session.flush()
        session.add(JobStatistics.empty(row.id, row.user_id))
    return row


async def token_on(database_url: str) -> str:
    """Create a user on the database at `database_url` (a stack's own); return its token."""
    engine = create_engine(database_url)
    try:
        _, token = await user_with_token(session_factory(engine))
    finally:
        await engine.dispose()
    return token


def scan_due(
    owner: str = "octo",
    name: str = "repo",
    base_url: str | None = None,
    *,
    start: datetime | None = datetime(2025, 3, 1, tzinfo=UTC),
    end: datetime = datetime(2025, 3, 8, tzinfo=UTC),
    deadline: datetime | None = None,
) -> JobDue:
    """A manual run's `job.due` for a GitHub repository, as the scanner receives it."""
    return JobDue(
        execution_id="exe_1",
        job_id="cron_1",
        project_id="prj_1",
        scheduled_for=end,
        trigger=Trigger.MANUAL,
        window_start=start,
        window_end=end,
        repository=Repository(owner=owner, name=name, base_url=base_url),
        platforms=["x"],
        deadline=deadline or datetime.now(UTC) + timedelta(minutes=5),
    )
