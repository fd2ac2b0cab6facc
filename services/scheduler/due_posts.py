"""Claim scheduled posts whose time came and hand each to the publisher, once.

A departure from the scheduler's usual ownership (docs/architecture.md, Ownership): it also
writes a due post's claim (`publish_claimed_at`, `publish_attempts`). Due posts are work
that falls due like a job's run, and the scheduler is where herald makes due work happen
exactly once across replicas: the posts are claimed with `FOR UPDATE SKIP LOCKED`, marked,
and their `post.due` written to the outbox, in one transaction. A second replica skips the
locked rows and, once committed, sees them claimed. A claim older than the lease is taken
again: its `post.due` was lost (a dead letter replayed later, a purged queue), and the
networks' keys derived from the post id make a second publication the first one. The lease
counts from the last sign of the publisher: every retry or rate-limit wait it announces
(a `post.failed` not final) moves the claim to the next attempt's time, so a chain still
being worked is never claimed twice. The new `post.due` carries the first claim's time
(`unknownSince`): past Mastodon's hour, the publisher looks for the status before sending.
So does a claim of a post an earlier chain failed after an attempt with an unknown outcome
(`publish_unknown_since`, kept through FAILED and the owner's new schedule): the earlier
of the two times, with every text such an attempt may have sent when the owner has edited
the post since (`publish_unknown_bodies`, as `unknownTexts`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics, outbox
from shared.db.schema import Content, Execution, Project, PublishingCredential
from shared.events import PostDue, PublishingTarget, RetryPolicy
from shared.publishing import network_for
from shared.retry import compute_backoff
from shared.runtime import pause
from shared.supervision import log_failed_pass

log = structlog.get_logger(__name__)

SCHEDULED = "SCHEDULED"


@dataclass(frozen=True)
class PostClaims:
    claimed: int
    # When the next unclaimed post falls due, if any (the loop sleeps until then).
    next_due: datetime | None


def _claimable(now: datetime, lease: timedelta) -> list[ColumnElement[bool]]:
    return [
        Content.state == SCHEDULED,
        Content.publish_at <= now,
        or_(Content.publish_claimed_at.is_(None), Content.publish_claimed_at < now - lease),
    ]


async def claim_due_posts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    batch: int,
    lease: timedelta,
    retry_policy: RetryPolicy,
) -> PostClaims:
    """Claim up to `batch` due posts and write their `post.due`, in one transaction."""
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(Content, Execution.job_id)
                .join(Execution, Execution.id == Content.execution_id)
                .join(Project, Project.id == Content.project_id)
                .where(*_claimable(now, lease), Project.deleted_at.is_(None))
                .order_by(Content.publish_at, Content.id)
                .limit(batch)
                .with_for_update(of=Content, skip_locked=True)
            )
        ).all()
        if not rows:
            return PostClaims(0, await _next_due(session, now))
        targets = await _targets(session, {(post.project_id or "") for post, _ in rows})
        events = []
        for post, job_id in rows:
            claim = (post.publish_attempts or 0) + 1
            network = network_for(post.platform)
            events.append(
                PostDue(
                    execution_id=post.execution_id,
                    job_id=job_id,
                    project_id=post.project_id or "",
                    post_id=post.id,
                    platform=post.platform,
                    title=post.title,
                    body=post.body or "",
                    claim=claim,
                    claimed_at=now,
                    target=targets.get((post.project_id or "", network)),
                    retry_policy=retry_policy,
                    unknown_since=_unknown_since(post),
                    unknown_texts=post.publish_unknown_bodies or [],
                )
            )
        await session.execute(
            update(Content)
            .where(Content.id.in_([post.id for post, _ in rows]))
            .values(
                publish_claimed_at=now,
                publish_first_claimed_at=func.coalesce(Content.publish_first_claimed_at, now),
                publish_attempts=func.coalesce(Content.publish_attempts, 0) + 1,
            )
            .execution_options(synchronize_session=False)
        )
        await outbox.enqueue(session, *events)
    metrics.SCHEDULER_POSTS_CLAIMED.inc(len(rows))
    log.info("posts due claimed", posts=[post.id for post, _ in rows])
    return PostClaims(len(rows), None)


def _unknown_since(post: Content) -> datetime | None:
    """Since when an earlier attempt may have published the post, or None if none could."""
    known = []
    # Claimed before and not finished: that chain's outcome is unknown from here.
    if post.publish_claimed_at is not None:
        known.append(post.publish_first_claimed_at or post.publish_claimed_at)
    # A chain that failed after an attempt herald never heard back from, before a new schedule.
    if post.publish_unknown_since is not None:
        known.append(post.publish_unknown_since)
    return min(known, default=None)


async def _targets(
    session: AsyncSession, projects: set[str]
) -> dict[tuple[str, str], PublishingTarget]:
    credentials = await session.scalars(
        select(PublishingCredential).where(PublishingCredential.project_id.in_(sorted(projects)))
    )
    return {
        (credential.project_id, credential.network): PublishingTarget(
            network=credential.network,
            settings={key: str(value) for key, value in (credential.settings or {}).items()},
            secret=credential.secret_encrypted,
            url=credential.url_encrypted,
        )
        for credential in credentials
    }


async def _next_due(session: AsyncSession, now: datetime) -> datetime | None:
    """The soonest time a scheduled post not yet claimed falls due (ix_contents_scheduled_due)."""
    return await session.scalar(
        select(func.min(Content.publish_at)).where(
            and_(Content.state == SCHEDULED, Content.publish_claimed_at.is_(None))
        )
    )


async def due_posts_loop(
    sessions: async_sessionmaker[AsyncSession],
    *,
    stop: asyncio.Event,
    wake: asyncio.Event,
    clock: Callable[[], datetime],
    batch: int,
    max_sleep: float,
    lease: timedelta,
    retry_policy: RetryPolicy,
    fired: asyncio.Event | None = None,
    retry_pause: float = 1.0,
) -> None:
    """Claim due posts, then sleep until the next falls due, a change wakes it, or `max_sleep`."""
    failures = 0
    while not stop.is_set():
        wake.clear()
        try:
            result = await claim_due_posts(
                sessions, now=clock(), batch=batch, lease=lease, retry_policy=retry_policy
            )
            failures = 0
        except Exception as exc:
            log_failed_pass(log, "claiming due posts failed; retrying", exc)
            failures += 1
            wait = compute_backoff(
                failures, base=retry_pause, max_backoff=retry_pause * 5, floor=0.0
            )
            await pause(wait, stop)
            continue
        if result.claimed:
            if fired is not None:
                fired.set()
            continue  # more may be due
        sleep = max_sleep
        if result.next_due is not None:
            sleep = min(max_sleep, max(0.0, (result.next_due - clock()).total_seconds()))
        if sleep > 0:
            await pause(sleep, wake, stop)
