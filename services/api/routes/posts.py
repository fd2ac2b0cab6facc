"""Reviewing posts: the drafts across projects, edits, approval, scheduling, discarding.

Each action moves a post as services.api.post_review says, with a compare-and-set on the
state it read (a publisher taking the post meanwhile wins; the reviewer gets a 409 saying
what the post became), and records who did what in the post's history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, Field, StringConstraints
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import UserDep
from services.api.bodies import Body
from services.api.deps import SessionDep
from services.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, listed
from services.api.post_review import Action, PostState, RefusedMove, next_state
from services.api.problems import Problem, invalid, not_found
from services.api.publishing import publishing_refusal
from services.api.requests import PlatformName
from services.api.views import post_change_view, post_view
from shared.db.notify import POSTS_CHANNEL, notify
from shared.db.schema import Content, PostChange, Project
from shared.ids import new_id
from shared.platforms import PLATFORMS
from shared.post_length import length_refusal

router = APIRouter(prefix="/api/posts", tags=["posts"])

PostId = Annotated[str, Path(max_length=40)]
BEING_PUBLISHED = "the post is being published: wait for it to be published or to fail"
# Further ahead than anyone plans a post, and near enough that a mistyped year is refused.
LATEST_SCHEDULE = timedelta(days=366)


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
    statement = (
        select(Content)
        .join(Project, Project.id == Content.project_id)
        .where(
            Content.user_id == user.id,
            Content.state.is_not(None),
            Project.deleted_at.is_(None),
        )
    )
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
    post = await _post_of(session, user.id, post_id)
    return {"success": True, "data": await _with_history(session, post)}


@router.patch("/{post_id}", operation_id="editPost")
async def edit_post(
    post_id: PostId, body: EditPost, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """Change a post's text; its platform's length rules are checked again."""
    post = await _post_of(session, user.id, post_id)
    platform = PLATFORMS.get(post.platform)
    refusal = length_refusal(post.platform, body.body)
    if refusal is not None:
        raise invalid("body", refusal)
    title = body.title or None
    if platform is not None and platform.has_title and title is None:
        raise invalid("title", f"a {post.platform} post needs a title")
    now = datetime.now(UTC)
    values = {
        "body": body.body,
        "title": title if platform is None or platform.has_title else None,
        "characters": len(body.body),
        "edited_at": now,
        "edited_by": user.id,
    }
    await _move(session, user.id, post, Action.EDIT, now=now, values=values)
    return {"success": True, "data": await _with_history(session, post)}


@router.post("/{post_id}/approve", operation_id="approvePost")
async def approve_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _act(session, user.id, post_id, Action.APPROVE)


@router.post("/{post_id}/schedule", operation_id="schedulePost")
async def schedule_post(
    post_id: PostId, user: UserDep, session: SessionDep, body: SchedulePost | None = None
) -> dict[str, Any]:
    """Publish at a time, or as soon as possible; scheduling a draft approves it."""
    now = datetime.now(UTC)
    at = body.publish_at.astimezone(UTC) if body and body.publish_at else now
    if at - now > LATEST_SCHEDULE:
        raise invalid("publishAt", "must be within a year from now")
    post = await _post_of(session, user.id, post_id)
    refusal = length_refusal(post.platform, post.body or "")
    if refusal is not None:
        raise invalid("body", f"{refusal}: edit the post before scheduling it")
    missing = await publishing_refusal(session, post.project_id or "", post.platform)
    if missing is not None:
        raise invalid("platform", missing)
    when = "as soon as possible" if at <= now else at.isoformat().replace("+00:00", "Z")
    await _move(
        session,
        user.id,
        post,
        Action.SCHEDULE,
        now=now,
        values={"publish_at": max(at, now), "publish_error": None},
        detail=f"publish {when}",
    )
    return {"success": True, "data": await _with_history(session, post)}


@router.post("/{post_id}/unschedule", operation_id="unschedulePost")
async def unschedule_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _act(session, user.id, post_id, Action.UNSCHEDULE, values={"publish_at": None})


@router.post("/{post_id}/discard", operation_id="discardPost")
async def discard_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return await _act(session, user.id, post_id, Action.DISCARD, values={"publish_at": None})


@router.post("/{post_id}/restore", operation_id="restorePost")
async def restore_post(post_id: PostId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """Bring a discarded post back as a draft."""
    return await _act(session, user.id, post_id, Action.RESTORE)


async def _act(
    session: AsyncSession,
    user_id: str,
    post_id: str,
    action: Action,
    *,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    post = await _post_of(session, user_id, post_id)
    await _move(session, user_id, post, action, now=datetime.now(UTC), values=values or {})
    return {"success": True, "data": await _with_history(session, post)}


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
    """Apply `action` if the post is still in the state it was read in; record it."""
    post_id, before = post.id, post.state
    try:
        after = next_state(action, before)
    except RefusedMove as refused:
        raise Problem(409, str(refused)) from None
    if post.publish_claimed_at is not None:
        raise Problem(409, BEING_PUBLISHED)
    changes = dict(values)
    if after != before:
        changes["state"] = after.value
        changes["state_changed_at"] = now
    result = await session.execute(
        update(Content)
        # Unclaimed too: a scheduler claiming the post meanwhile wins, as publishing must.
        .where(
            Content.id == post_id,
            Content.state == before,
            Content.publish_claimed_at.is_(None),
        )
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        current = (
            await session.execute(
                select(Content.state, Content.publish_claimed_at).where(Content.id == post_id)
            )
        ).one()
        if current.publish_claimed_at is not None:
            raise Problem(409, BEING_PUBLISHED)
        raise Problem(409, f"the post changed meanwhile: it is {current.state} now; reload it")
    session.add(
        PostChange(
            id=new_id("pch"),
            content_id=post_id,
            at=now,
            actor=user_id,
            action=action.value,
            from_state=before,
            to_state=after.value,
            detail=detail,
        )
    )
    if after == PostState.SCHEDULED:
        await notify(session, POSTS_CHANNEL)  # the scheduler's due-posts loop looks again
    await session.commit()
    await session.refresh(post)


async def _post_of(session: AsyncSession, user_id: str, post_id: str) -> Content:
    """The caller's post, on a project not deleted; 404 for anything else (never 403: an id
    of someone else's post says nothing)."""
    post = await session.scalar(
        select(Content)
        .join(Project, Project.id == Content.project_id)
        .where(
            Content.id == post_id,
            Content.user_id == user_id,
            Content.state.is_not(None),
            Project.deleted_at.is_(None),
        )
    )
    if post is None:
        raise not_found("post")
    return post


async def _with_history(session: AsyncSession, post: Content) -> dict[str, Any]:
    changes = (
        await session.scalars(
            select(PostChange)
            .where(PostChange.content_id == post.id)
            .order_by(PostChange.at, PostChange.id)
        )
    ).all()
    return {**post_view(post), "history": [post_change_view(change) for change in changes]}
