"""A manual run written as the api writes it, and the scan its scanner would report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.triggers import trigger_manually
from shared.db.schema import CronJob, Execution, Project
from shared.events import ActivityItem, ActivityScanned, ActivitySummary, Repository
from tests.support import factories

PUBLIC = "http://herald.test"


async def started_execution(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[Execution, dict[str, str]]:
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(
        sessions,
        user_id,
        local_repo_path="/srv/repo",
        # As the api stores them: one address confirmed, one still waiting to confirm.
        notification_settings={
            "recipients": ["a@example.test", "waiting@example.test"],
            "confirmedRecipients": ["a@example.test"],
        },
    )
    job = await factories.job(sessions, project, next_run_at=None)
    async with sessions() as session, session.begin():
        job_row = await session.get(CronJob, job.id)
        project_row = await session.get(Project, project.id)
        assert job_row is not None and project_row is not None
        execution = await trigger_manually(
            session, job=job_row, project=project_row, user_id=user_id
        )
    envelope = {"execution_id": execution.id, "job_id": job.id, "project_id": project.id}
    return execution, envelope


def scanned(envelope: dict[str, str], *, commits: int) -> ActivityScanned:
    items = [
        ActivityItem(kind="commit", title=f"change {n}", sha=f"{n:040x}") for n in range(commits)
    ]
    return ActivityScanned(
        **envelope,
        summary=ActivitySummary(commits=commits, items=items),
        github_api_calls=3,
        platforms=["x", "blog"],
        repository=Repository(local_path="/srv/repo"),
        window_start=None,
        window_end=datetime.now(UTC),
        deadline=datetime.now(UTC) + timedelta(minutes=15),
    )
