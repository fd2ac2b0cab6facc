"""Reviewing posts: the drafts across projects, edits, approval, scheduling, discarding.

The actions themselves are services.api.post_actions, shared with `herald posts`; a route
reads the request, applies one, and answers its refusal as a problem.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import post_actions
from services.api.auth import UserDep
from services.api.bodies import Body
from services.api.deps import SessionDep
from services.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, listed
from services.api.post_actions import PostRefusedError
from services.api.post_review import Action, PostState
from services.api.problems import Problem, invalid
from services.api.requests import PlatformName
from services.api.views import post_view
from shared.db.schema import Content

router = APIRouter(prefix="/api/posts", tags=["posts"])

PostId = Annotated[str, Path(max_length=40)]


class EditPost(Body):
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000)]


class SchedulePost(Body):
    publish_at: AwareDatetime | None = Field(
        default=None,
        description="When to publish (with its offset); absent or past: as soon as possible.",
    )


@router.get("", operation_id="listPosts")
async def list_posts(
    user: UserDep,
    session: SessionDep,
    state: Annotated[
        PostState | None, Query(alias="publishStatus", description="Only posts in this state.")
    ] = None,
    project_id: Annotated[str | None, Query(alias="projectId", max_length=40)] = None,
    platform: Annotated[PlatformName | None, Query()] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    """Your generated posts, newest first, across your projects (a failed generation is not
    a post to review and is left out)."""
    statement = post_actions.reviewable_posts().where(Content.user_id == user.id)
    if state is not None:
        statement = statement.where(Content.state == state.value)
    if project_id is not None:
        statement = statement.where(Content.project_id == project_id)
    if platform is not None:
        statement = statement.where(Content.platform == platform)
    return await listed(
        session, statement, model=Content, view=post_view, limit=limit, cursor=cursor
    )


@router.get("/{post_id}", operation_id="getPost")
async def get_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _answered(session, post_actions.post_of(session, user.id, post_id))


@router.patch("/{post_id}", operation_id="editPost")
async def edit_post(
    post_id: PostId, body: EditPost, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """Change a post's text; its platform's length rules are checked again."""
    return await _answered(
        session,
        post_actions.edit(session, user.id, post_id, body=body.body, title=body.title),
    )


@router.post("/{post_id}/approve", operation_id="approvePost")
async def approve_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _answered(session, post_actions.approve(session, user.id, post_id))


@router.post("/{post_id}/schedule", operation_id="schedulePost")
async def schedule_post(
    post_id: PostId, user: UserDep, session: SessionDep, body: SchedulePost | None = None
) -> dict[str, Any]:
    """Publish at a time, or as soon as possible; scheduling a draft approves it."""
    publish_at = body.publish_at if body is not None else None
    return await _answered(
        session, post_actions.schedule(session, user.id, post_id, publish_at=publish_at)
    )


@router.post("/{post_id}/unschedule", operation_id="unschedulePost")
async def unschedule_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _answered(session, post_actions.unschedule(session, user.id, post_id))


@router.post("/{post_id}/discard", operation_id="discardPost")
async def discard_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _answered(session, post_actions.discard(session, user.id, post_id))


@router.post("/{post_id}/restore", operation_id="restorePost")
async def restore_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """Bring a discarded post back as a draft."""
    return await _answered(session, post_actions.restore(session, user.id, post_id))


async def _answered(session: AsyncSession, action: Awaitable[Content]) -> dict[str, Any]:
    """The post `action` leaves, with its history; its refusal as a problem."""
    try:
        post = await action
    except PostRefusedError as refused:
        raise problem_of(refused) from None
    return {"success": True, "data": await post_actions.with_history(session, post)}


def problem_of(refused: PostRefusedError) -> Problem:
    if refused.field is not None:
        return invalid(refused.field, refused.message)
    return Problem(refused.status, refused.message)


async def _move(
    session: AsyncSession,
    user_id: str,
    post: Content,
    action: Action,
    *,
    now: datetime,
    values: dict[str, Any],
    detail: str | None = None,
) -> None:
    """The shared move answered as the API answers it, for a caller racing it directly."""
    try:
        await post_actions.move(
            session, user_id, post, action, now=now, values=values, detail=detail
        )
    except PostRefusedError as refused:
        raise problem_of(refused) from None
