"""The scheduler's claim of due posts: each due post handed to the publisher once, with its
project's credential still encrypted; replicas share them; a lost claim is taken again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.due_posts import claim_due_posts
from shared.db.schema import Content, OutboxMessage
from shared.events import RetryPolicy
from shared.secrets import decrypt, generate_key
from tests.support.posts import WEBHOOK_URL, generated_posts, with_credentials

LEASE = timedelta(minutes=30)
POLICY = RetryPolicy(max_retries=4, retry_delay=30)
Sessions = async_sessionmaker[AsyncSession]


async def scheduled(sessions: Sessions, post_ids: list[str], at: datetime) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content)
            .where(Content.id.in_(post_ids))
            .values(state="SCHEDULED", publish_at=at, state_changed_at=at)
        )


async def dues(sessions: Sessions) -> list[dict[str, object]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.routing_key == "post.due")
        )
        return [json.loads(payload) for payload in rows]


async def claim(sessions: Sessions, now: datetime, batch: int = 50) -> int:
    result = await claim_due_posts(sessions, now=now, batch=batch, lease=LEASE, retry_policy=POLICY)
    return result.claimed


async def test_a_webhook_posts_due_carries_the_url_sealed(own_sessions: Sessions) -> None:
    sessions = own_sessions
    key = generate_key()
    _, _, ids = await generated_posts(sessions, publishing=False)
    async with sessions() as session:
        row = await session.get(Content, ids["blog"])
        assert row is not None
    await with_credentials(sessions, row.project_id or "", secret_key=key)
    now = datetime(2031, 5, 1, 10, 0, tzinfo=UTC)
    await scheduled(sessions, [ids["blog"]], now - timedelta(seconds=1))

    assert await claim(sessions, now) == 1
    (due,) = await dues(sessions)
    target = due["target"]
    assert isinstance(target, dict)
    assert target["settings"] == {"urlHost": "hooks.example"}
    assert "T0KEN" not in json.dumps(due) and "t0ken" not in json.dumps(due)
    assert decrypt(str(target["url"]), key) == WEBHOOK_URL


async def test_a_due_post_is_claimed_once_with_its_credential_sealed(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    key = generate_key()
    _, _, ids = await generated_posts(sessions, publishing=False)
    async with sessions() as session:
        row = await session.get(Content, ids["mastodon"])
        assert row is not None
    await with_credentials(
        sessions,
        row.project_id or "",
        secret_key=key,
        settings={"mastodon": {"instanceUrl": "https://mastodon.example"}},
        secrets={"mastodon": "token-1"},
    )
    now = datetime(2031, 5, 1, 10, 0, tzinfo=UTC)
    await scheduled(sessions, [ids["mastodon"]], now - timedelta(seconds=1))
    await scheduled(sessions, [ids["bluesky"]], now + timedelta(hours=1))

    assert await claim(sessions, now) == 1
    assert await claim(sessions, now) == 0  # claimed: not again within the lease
    (due,) = await dues(sessions)
    assert due["postId"] == ids["mastodon"]
    assert due["body"] == "herald 2.0 is out, toot"
    assert due["retryPolicy"] == {"maxRetries": 4, "retryDelay": 30}
    target = due["target"]
    assert isinstance(target, dict)
    assert target["settings"] == {"instanceUrl": "https://mastodon.example"}
    assert "token-1" not in json.dumps(due)
    assert decrypt(target["secret"], key) == "token-1"
    async with sessions() as session:
        claimed = await session.get(Content, ids["mastodon"])
        assert claimed is not None
        assert (claimed.publish_claimed_at, claimed.publish_attempts) == (now, 1)

    # Past the lease its post.due counts as lost: claimed again, the same post.
    later = now + LEASE + timedelta(seconds=1)
    assert await claim(sessions, later) == 1
    assert [due["claim"] for due in await dues(sessions)] == [1, 2]
    # The first chain may have published: the new one says since when (the first claim),
    # and keeps saying so on a third claim, which must not move it.
    await claim(sessions, later + LEASE + timedelta(seconds=1))  # the Bluesky post too
    mine = [due for due in await dues(sessions) if due["postId"] == ids["mastodon"]]
    unknown = [due.get("unknownSince") for due in mine]
    assert unknown == [None, "2031-05-01T10:00:00Z", "2031-05-01T10:00:00Z"]


async def test_a_post_an_earlier_chain_left_unknown_carries_the_earliest_time_it_knows(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    _, _, ids = await generated_posts(sessions)
    now = datetime(2031, 5, 1, 10, 0, tzinfo=UTC)
    failed_chain = now - timedelta(hours=3)
    await scheduled(sessions, [ids["mastodon"]], now - timedelta(seconds=1))
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content)
            .where(Content.id == ids["mastodon"])
            .values(publish_unknown_since=failed_chain)
        )

    # Scheduled again after that chain failed: the first claim already says since when.
    assert await claim(sessions, now) == 1
    # Claimed again after the lease: the failed chain's time is still the earlier one.
    assert await claim(sessions, now + LEASE + timedelta(seconds=1)) == 1
    assert [due.get("unknownSince") for due in await dues(sessions)] == [
        "2031-05-01T07:00:00Z",
        "2031-05-01T07:00:00Z",
    ]
    async with sessions() as session:
        row = await session.get(Content, ids["mastodon"])
        assert row is not None
        # Kept until the post is published: a claim writes only its own columns.
        assert row.publish_unknown_since == failed_chain


async def test_a_post_without_a_credential_is_handed_on_to_fail_with_the_reason(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    _, _, ids = await generated_posts(sessions, publishing=False)
    now = datetime(2031, 5, 1, 10, 0, tzinfo=UTC)
    await scheduled(sessions, [ids["x"]], now)
    assert await claim(sessions, now) == 1
    (due,) = await dues(sessions)
    assert due["target"] is None


@pytest.mark.postgresql_only(reason="concurrent claimers need row locks SQLite does not have")
async def test_replicas_racing_on_due_posts_claim_each_once(own_sessions: Sessions) -> None:
    sessions = own_sessions
    posts = []
    for _ in range(10):
        _, _, ids = await generated_posts(sessions)
        posts += [ids["mastodon"], ids["bluesky"], ids["x"]]
    now = datetime(2031, 5, 1, 10, 0, tzinfo=UTC)
    await scheduled(sessions, posts, now - timedelta(minutes=1))

    async def replica() -> int:
        total = 0
        while claimed := await claim(sessions, now, batch=3):
            total += claimed
        return total

    counts = await asyncio.gather(*(replica() for _ in range(4)))
    assert sum(counts) == len(posts)
    handed = [due["postId"] for due in await dues(sessions)]
    assert sorted(handed) == sorted(posts)
