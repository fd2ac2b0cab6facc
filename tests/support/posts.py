"""A run that generated posts, recorded through the api's own event path."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from services.api.triggers import trigger_manually
from shared.db.schema import Content, CronJob, Project, PublishingCredential
from shared.destinations import webhook_host
from shared.events import ContentGenerated, PostResult, StepStarted
from shared.secrets import encrypt, generate_key
from shared.tokens import issue_token
from tests.support import factories

PUBLIC = "http://herald.test"
# A receiver's URL with its token in the path and query, as such URLs often are.
WEBHOOK_URL = "https://hooks.example/herald/T0KEN-in-path?key=t0ken-in-query"


async def generated_posts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    publish_modes: dict[str, str] | None = None,
    results: list[PostResult] | None = None,
    publishing: bool = True,
    user_id: str | None = None,
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A user's run that generated posts, through the api's own event path; with
    `publishing`, its project has a credential for every network, so its posts may be
    scheduled. With `user_id`, the run is that user's (a second project of theirs, say).

    Returns the user id, their headers, and the post ids by platform."""
    if user_id is None:
        user_id, token = await factories.user_with_token(sessions)
    else:
        async with sessions() as session, session.begin():
            token = await issue_token(session, user_id=user_id)
    project = await factories.project(
        sessions,
        user_id,
        platforms=["x", "mastodon", "bluesky", "blog"],
        publish_modes=publish_modes or {},
    )
    job = await factories.job(sessions, project, next_run_at=None)
    if publishing:
        await with_credentials(sessions, project.id)
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


async def with_credentials(
    sessions: async_sessionmaker[AsyncSession],
    project_id: str,
    *,
    secret_key: str | None = None,
    settings: dict[str, dict[str, str]] | None = None,
    secrets: dict[str, str] | None = None,
) -> None:
    """Give a project a credential for each network, as the API would store them."""
    key = secret_key or generate_key()
    chosen = settings or {
        "mastodon": {"instanceUrl": "https://mastodon.example"},
        "bluesky": {"serviceUrl": "https://bsky.social", "identifier": "herald.bsky.social"},
        "webhook": {"url": WEBHOOK_URL},
    }
    async with sessions() as session, session.begin():
        for network, values in chosen.items():
            secret = (secrets or {}).get(network, f"{network}-secret")
            stored = dict(values)
            # A webhook's URL is stored encrypted, only its host shown (services.api.publishing).
            url = stored.pop("url", None)
            if url is not None:
                stored["urlHost"] = webhook_host(url)
            session.add(
                PublishingCredential(
                    project_id=project_id,
                    network=network,
                    settings=stored,
                    secret_encrypted=encrypt(secret, key),
                    url_encrypted=encrypt(url, key) if url is not None else None,
                )
            )
