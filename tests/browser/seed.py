"""Records the browser tests start from, written straight to the stack's database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, update

from shared.db.engine import create_engine, session_factory
from shared.db.schema import ApiToken
from tests.support import factories
from tests.support.posts import generated_posts


@dataclass(frozen=True)
class Tenant:
    user_id: str
    token: str
    project_id: str


async def tenant(database_url: str) -> Tenant:
    """A user with a token and one project on the local repository `demo`."""
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        user_id, token = await factories.user_with_token(sessions)
        project = await factories.project(sessions, user_id, local_repo_path="demo")
    finally:
        await engine.dispose()
    return Tenant(user_id, token, project.id)


async def revoke_tokens(database_url: str, user_id: str) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(
                update(ApiToken).where(ApiToken.user_id == user_id).values(revoked_at=func.now())
            )
    finally:
        await engine.dispose()


async def drafts(database_url: str) -> tuple[str, dict[str, str]]:
    """A run's posts waiting for review, through the api's own event path: the owner's
    token and the post ids by platform."""
    engine = create_engine(database_url)
    try:
        _, headers, ids = await generated_posts(session_factory(engine), publishing=False)
    finally:
        await engine.dispose()
    return headers["Authorization"].removeprefix("Bearer "), ids
