"""The review actions on a post, as both `/api/posts` and `herald posts` apply them.

Each action moves a post as services.api.post_review says, with a compare-and-set on the
state it read (a publisher taking the post meanwhile wins; the reviewer is told what the post
became), and records who did what in the post's history: its `actor`, the user's id unless
the door names another (`herald posts` records the shell's user, not the owner it acts for).
A refusal is a PostRefusedError each door words its own way: a problem for the API, a line
on stderr for the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.post_review import Action, PostState, RefusedMove, next_state
from services.api.publishing import post_limits, publishing_refusal
from services.api.views import post_change_view, post_view
from shared.db.notify import POSTS_CHANNEL, notify
from shared.db.schema import Content, PostChange, Project
from shared.ids import new_id
from shared.platforms import PLATFORMS
from shared.post_length import length_refusal

BEING_PUBLISHED = "the post is being published: wait for it to be published or to fail"
POST_NOT_FOUND = "post not found"
# Every text kept is looked for and travels in each `post.due`, so the list is bounded. No
# text may be dropped to stay within it: the dropped one may be the text an attempt
# published, and the publisher would post again. Past the bound, edits are refused instead.
UNKNOWN_BODIES_KEPT = 20
TOO_MANY_UNKNOWN_BODIES = (
    "an earlier attempt may have published this post, and it has been edited too often "
    "since to look for every text it had: check the account before publishing it again"
)
# Further ahead than anyone plans a post, and near enough that a mistyped year is refused.
LATEST_SCHEDULE = timedelta(days=366)


class PostRefusedError(Exception):
    """An action the post's rules refuse: 404 (no such post), 409 (its state), 422 (`field`)."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def reviewable_posts() -> Select[Content]:
    """Posts there are to review: on a project not deleted, their generation not failed."""
    return (
        select(Content)
        .join(Project, Project.id == Content.project_id)
        .where(Content.state.is_not(None), Project.deleted_at.is_(None))
    )


async def post_of(session: AsyncSession, user_id: str, post_id: str) -> Content:
    """The user's post; refused as not found for anything else (never "forbidden": an id of
    someone else's post says nothing)."""
    post = await session.scalar(
        reviewable_posts().where(Content.id == post_id, Content.user_id == user_id)
    )
    if post is None:
        raise PostRefusedError(404, POST_NOT_FOUND)
    return post


async def with_history(session: AsyncSession, post: Content) -> dict[str, Any]:
    """The post as the API shows one: its view and every review step, oldest first."""
    changes = (
        await session.scalars(
            select(PostChange)
            .where(PostChange.content_id == post.id)
            .order_by(PostChange.at, PostChange.id)
        )
    ).all()
    return {**post_view(post), "history": [post_change_view(change) for change in changes]}


async def edit(
    session: AsyncSession,
    user_id: str,
    post_id: str,
    *,
    body: str,
    title: str | None,
    actor: str | None = None,
) -> Content:
    """Change a post's text; its platform's length rules are checked again."""
    post = await post_of(session, user_id, post_id)
    platform = PLATFORMS.get(post.platform)
    refusal = await _length_refusal(session, post, body)
    if refusal is not None:
        raise PostRefusedError(422, refusal, field="body")
    title = title or None
    if platform is not None and platform.has_title and title is None:
        raise PostRefusedError(422, f"a {post.platform} post needs a title", field="title")
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "body": body,
        "title": title if platform is None or platform.has_title else None,
        "characters": len(body),
        "edited_at": now,
        "edited_by": actor or user_id,
    }
    unchanged: list[ColumnElement[bool]] = []
    sent = _sent_bodies(post, body)
    if sent is not None:
        values["publish_unknown_bodies"] = sent
        # The list is computed from the row as read: an edit, or a chain that sent the text,
        # committed meanwhile would make it miss a text, so the write needs the row unchanged.
        unchanged = [
            Content.body.is_not_distinct_from(post.body),
            Content.edited_at.is_not_distinct_from(post.edited_at),
            Content.publish_unknown_since.is_not_distinct_from(post.publish_unknown_since),
        ]
    await move(
        session, actor or user_id, post, Action.EDIT, now=now, values=values, unchanged=unchanged
    )
    return post


async def schedule(
    session: AsyncSession,
    user_id: str,
    post_id: str,
    *,
    publish_at: datetime | None,
    actor: str | None = None,
) -> Content:
    """Publish at a time, or as soon as possible (None, or a time past); scheduling a draft
    approves it."""
    now = datetime.now(UTC)
    at = publish_at.astimezone(UTC) if publish_at is not None else now
    if at - now > LATEST_SCHEDULE:
        raise PostRefusedError(422, "must be within a year from now", field="publishAt")
    post = await post_of(session, user_id, post_id)
    refusal = await _length_refusal(session, post, post.body or "")
    if refusal is not None:
        raise PostRefusedError(422, f"{refusal}: edit the post before scheduling it", field="body")
    missing = await publishing_refusal(session, post.project_id or "", post.platform)
    if missing is not None:
        raise PostRefusedError(422, missing, field="platform")
    when = "as soon as possible" if at <= now else at.isoformat().replace("+00:00", "Z")
    await move(
        session,
        actor or user_id,
        post,
        Action.SCHEDULE,
        now=now,
        values={"publish_at": max(at, now), "publish_error": None},
        detail=f"publish {when}",
    )
    return post


async def approve(
    session: AsyncSession, user_id: str, post_id: str, *, actor: str | None = None
) -> Content:
    return await _act(session, user_id, post_id, Action.APPROVE, values={}, actor=actor)


async def unschedule(
    session: AsyncSession, user_id: str, post_id: str, *, actor: str | None = None
) -> Content:
    values = {"publish_at": None}
    return await _act(session, user_id, post_id, Action.UNSCHEDULE, values=values, actor=actor)


async def discard(
    session: AsyncSession, user_id: str, post_id: str, *, actor: str | None = None
) -> Content:
    values = {"publish_at": None}
    return await _act(session, user_id, post_id, Action.DISCARD, values=values, actor=actor)


async def restore(
    session: AsyncSession, user_id: str, post_id: str, *, actor: str | None = None
) -> Content:
    """Bring a discarded post back as a draft."""
    return await _act(session, user_id, post_id, Action.RESTORE, values={}, actor=actor)


async def _act(
    session: AsyncSession,
    user_id: str,
    post_id: str,
    action: Action,
    *,
    values: dict[str, Any],
    actor: str | None,
) -> Content:
    post = await post_of(session, user_id, post_id)
    await move(session, actor or user_id, post, action, now=datetime.now(UTC), values=values)
    return post


async def move(
    session: AsyncSession,
    actor: str,
    post: Content,
    action: Action,
    *,
    now: datetime,
    values: dict[str, Any],
    detail: str | None = None,
    unchanged: Sequence[ColumnElement[bool]] = (),
) -> None:
    """Apply `action` if the post is still in the state it was read in (and `unchanged`
    holds); record it as `actor`'s."""
    post_id, before = post.id, post.state
    try:
        after = next_state(action, before)
    except RefusedMove as refused:
        raise PostRefusedError(409, str(refused)) from None
    if post.publish_claimed_at is not None:
        raise PostRefusedError(409, BEING_PUBLISHED)
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
            *unchanged,
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
            raise PostRefusedError(409, BEING_PUBLISHED)
        raise PostRefusedError(
            409, f"the post changed meanwhile: it is {current.state} now; reload it"
        )
    session.add(
        PostChange(
            id=new_id("pch"),
            content_id=post_id,
            at=now,
            actor=actor,
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


def _sent_bodies(post: Content, body: str) -> list[str] | None:
    """The texts an attempt with an unknown outcome may have sent, with the one this edit
    replaces added; None when nothing is to be kept (no such attempt, or the text stays).

    Each chain sends the text the post has when it is claimed, and edits are refused while
    one works the post, so the text an edit replaces is the only one a chain since the last
    edit can have sent: keeping each replaced text keeps every one sent, and the publisher
    looks for a status with any of them, not only with the new text.
    """
    if post.publish_unknown_since is None:
        return None
    kept = list(post.publish_unknown_bodies or [])
    before = post.body or ""
    if before == body or before in kept:
        return None
    if len(kept) >= UNKNOWN_BODIES_KEPT:
        raise PostRefusedError(409, TOO_MANY_UNKNOWN_BODIES)
    return [*kept, before]


async def _length_refusal(session: AsyncSession, post: Content, text: str) -> str | None:
    """The length check with the limits of the network the post goes to, where known (a
    Mastodon instance's own, reported by the publisher), else the platform's usual ones."""
    limits = await post_limits(session, post.project_id or "", post.platform)
    return length_refusal(
        post.platform,
        text,
        limit=limits.max_characters,
        per_url=limits.characters_reserved_per_url,
    )
