"""A run that generated posts, recorded through the api's own event path."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from services.api.triggers import trigger_manually
from shared.db.schema import Content, CronJob, Project
from shared.events import ContentGenerated, PostResult, StepStarted
from tests.support import factories

PUBLIC = "http://herald.test"


async def generated_posts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    publish_modes: dict[str, str] | None = None,
    results: list[PostResult] | None = None,
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A user's run that generated posts, through the api's own event path.

    Returns the user id, their headers, and the post ids by platform."""
    user_id, token = await factories.user_with_token(sessions)
    project = await factories.project(
        sessions,
        user_id,
        platforms=["x", "mastodon", "bluesky", "blog"],
        publish_modes=publish_modes or {},
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
    await apply_event(sessions, StepStarted(**envelope, step="generate"), public_url=PUBLIC)
    results = results or [
        PostResult(platform="x", status="GENERATED", body="herald 2.0 is out"),
        PostResult(platform="mastodon", status="GENERATED", body="herald 2.0 is out, toot"),
        PostResult(platform="bluesky", status="GENERATED", body="herald 2.0 is out, skeet"),
        PostResult(
            platform="blog", status="GENERATED", title="herald 2.0", body="# herald 2.0\n\nOut."
        ),
    ]
    await apply_event(sessions, ContentGenerated(**envelope, results=results), public_url=PUBLIC)
    async with sessions() as session:
        rows = await session.scalars(select(Content).where(Content.execution_id == execution.id))
        ids = {row.platform: row.id for row in rows}
    return user_id, {"Authorization": f"Bearer {token}"}, ids
