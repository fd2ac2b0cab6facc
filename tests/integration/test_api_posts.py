"""Reviewing posts: drafts as generated, edits checked against the network's length, approval,
scheduling, discarding, each recorded with who did it; the state machine holds under races."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.post_review import Action
from services.api.problems import Problem
from services.api.routes.posts import _move
from shared.db.schema import Content, Project, PublishingCredential
from shared.events import PostResult
from tests.support import factories
from tests.support.posts import generated_posts

PUBLIC = "http://herald.test"


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def test_generated_posts_are_drafts_listed_across_projects_and_filterable(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)

    listed = (await api.get("/api/posts", headers=headers)).json()
    assert listed["success"] is True
    assert {post["id"] for post in listed["data"]} == set(ids.values())
    assert {post["publishStatus"] for post in listed["data"]} == {"DRAFT"}
    only = (
        await api.get("/api/posts?platform=bluesky&publishStatus=DRAFT", headers=headers)
    ).json()
    assert [post["id"] for post in only["data"]] == [ids["bluesky"]]
    none = (await api.get("/api/posts?publishStatus=PUBLISHED", headers=headers)).json()
    assert none["data"] == []

    # Someone else sees none of them, and cannot read one by its id.
    _, other_token = await factories.user_with_token(sessions)
    other = {"Authorization": f"Bearer {other_token}"}
    assert (await api.get("/api/posts", headers=other)).json()["data"] == []
    assert (await api.get(f"/api/posts/{ids['x']}", headers=other)).status_code == 404


async def test_a_failed_generation_is_no_post_to_review(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(
        sessions,
        results=[
            PostResult(platform="x", status="GENERATED", body="fine"),
            PostResult(platform="mastodon", status="FAILED", error="model refused"),
        ],
    )
    listed = (await api.get("/api/posts", headers=headers)).json()["data"]
    assert [post["id"] for post in listed] == [ids["x"]]
    response = await api.post(f"/api/posts/{ids['mastodon']}/approve", headers=headers)
    assert response.status_code == 404


async def test_review_flow_records_each_step_with_its_actor(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user_id, headers, ids = await generated_posts(sessions)
    post = ids["mastodon"]

    edited = await ok(
        await api.patch(f"/api/posts/{post}", headers=headers, json={"body": "Edited toot"})
    )
    assert (edited["body"], edited["publishStatus"], edited["editedBy"]) == (
        "Edited toot",
        "DRAFT",
        user_id,
    )
    assert edited["editedAt"] is not None
    approved = await ok(await api.post(f"/api/posts/{post}/approve", headers=headers))
    assert approved["publishStatus"] == "APPROVED"
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    scheduled = await ok(
        await api.post(
            f"/api/posts/{post}/schedule",
            headers=headers,
            json={"publishAt": at.isoformat()},
        )
    )
    assert scheduled["publishStatus"] == "SCHEDULED"
    assert datetime.fromisoformat(scheduled["publishAt"]) == at
    unscheduled = await ok(await api.post(f"/api/posts/{post}/unschedule", headers=headers))
    assert (unscheduled["publishStatus"], unscheduled["publishAt"]) == ("APPROVED", None)
    discarded = await ok(await api.post(f"/api/posts/{post}/discard", headers=headers))
    assert discarded["publishStatus"] == "DISCARDED"
    restored = await ok(await api.post(f"/api/posts/{post}/restore", headers=headers))
    assert restored["publishStatus"] == "DRAFT"

    history = (await ok(await api.get(f"/api/posts/{post}", headers=headers)))["history"]
    assert [(step["action"], step["from"], step["to"]) for step in history] == [
        ("edit", "DRAFT", "DRAFT"),
        ("approve", "DRAFT", "APPROVED"),
        ("schedule", "APPROVED", "SCHEDULED"),
        ("unschedule", "SCHEDULED", "APPROVED"),
        ("discard", "APPROVED", "DISCARDED"),
        ("restore", "DISCARDED", "DRAFT"),
    ]
    assert {step["actor"] for step in history} == {user_id}
    assert history[2]["detail"].startswith("publish 20")


async def test_scheduling_a_draft_approves_it_and_now_means_as_soon_as_possible(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    before = datetime.now(UTC)
    scheduled = await ok(await api.post(f"/api/posts/{ids['x']}/schedule", headers=headers))
    assert scheduled["publishStatus"] == "SCHEDULED"
    assert datetime.fromisoformat(scheduled["publishAt"]) >= before.replace(microsecond=0)
    # A time in the past is as soon as possible too, never a time the publisher missed.
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    again = await ok(
        await api.post(
            f"/api/posts/{ids['bluesky']}/schedule", headers=headers, json={"publishAt": past}
        )
    )
    assert datetime.fromisoformat(again["publishAt"]) >= before.replace(microsecond=0)


async def test_refusals_name_the_field_and_rule_or_the_state(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)

    # Over Bluesky's 300 graphemes (151 emoji sequences, one each, and the 150 spaces between,
    # the edge stripped): the limit is named.
    long = "🧑‍💻 " * 151
    response = await api.patch(f"/api/posts/{ids['bluesky']}", headers=headers, json={"body": long})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body", "message": "301 graphemes, over Bluesky's 300"}
    ]
    # X weighs CJK twice: 150 of them are 300, over 280.
    response = await api.patch(f"/api/posts/{ids['x']}", headers=headers, json={"body": "漢" * 150})
    assert response.status_code == 422
    assert "over X's 280" in response.json()["errors"][0]["message"]
    # The same 150 characters fit Mastodon's 500.
    fine = await api.patch(
        f"/api/posts/{ids['mastodon']}", headers=headers, json={"body": "漢" * 150}
    )
    assert fine.status_code == 200, fine.text
    # A blog post needs its title.
    response = await api.patch(
        f"/api/posts/{ids['blog']}", headers=headers, json={"body": "text", "title": " "}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "title"
    # Too far ahead.
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    response = await api.post(
        f"/api/posts/{ids['x']}/schedule", headers=headers, json={"publishAt": far}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "publishAt"
    # A time without its offset is ambiguous.
    response = await api.post(
        f"/api/posts/{ids['x']}/schedule", headers=headers, json={"publishAt": "2031-01-01T10:00"}
    )
    assert response.status_code == 422
    # Approving twice: the state is named.
    assert (await api.post(f"/api/posts/{ids['x']}/approve", headers=headers)).status_code == 200
    response = await api.post(f"/api/posts/{ids['x']}/approve", headers=headers)
    assert response.status_code == 409
    assert "cannot approve a APPROVED post" in response.json()["detail"]


async def test_a_mastodon_post_is_checked_against_its_instances_recorded_limits(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    post = f"/api/posts/{ids['mastodon']}"

    # Nothing recorded yet: Mastodon's default 500, and the refusal says it is the default.
    response = await api.patch(post, headers=headers, json={"body": "a" * 600})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "body",
            "message": "600 characters as Mastodon counts them, over Mastodon's default 500 "
            "(the instance's own limit is known once herald has published there)",
        }
    ]

    async with sessions() as session, session.begin():
        row = await session.get(Content, ids["mastodon"])
        assert row is not None
        await session.execute(
            update(PublishingCredential)
            .where(
                PublishingCredential.project_id == row.project_id,
                PublishingCredential.network == "mastodon",
            )
            .values(max_characters=1000, characters_reserved_per_url=30)
        )
    # The instance's 1000, as the publisher recorded it.
    assert (await api.patch(post, headers=headers, json={"body": "a" * 700})).status_code == 200
    response = await api.patch(post, headers=headers, json={"body": "a" * 1200})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "body",
            "message": "1200 characters as Mastodon counts them, "
            "over the 1000 of the project's Mastodon instance",
        }
    ]
    # Each link counts the instance's 30: 970 letters, a space and a link are 1001.
    link = "https://example.org/" + "n" * 200
    response = await api.patch(post, headers=headers, json={"body": "a" * 970 + " " + link})
    assert "1001 characters as Mastodon counts them" in response.json()["errors"][0]["message"]
    assert (
        await api.patch(post, headers=headers, json={"body": "a" * 969 + " " + link})
    ).status_code == 200

    # Scheduling checks the same limit (a text stored over it, say by an older check).
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == ids["mastodon"]).values(body="a" * 1001)
        )
    response = await api.post(f"{post}/schedule", headers=headers)
    assert response.status_code == 422
    assert (
        "over the 1000 of the project's Mastodon instance"
        in (response.json()["errors"][0]["message"])
    )


async def test_a_published_post_is_final(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content)
            .where(Content.id == ids["mastodon"])
            .values(state="PUBLISHED", published_url="https://mastodon.example/@herald/1")
        )
    for method, path, body in (
        ("PATCH", "", {"body": "too late"}),
        ("POST", "/discard", None),
        ("POST", "/schedule", None),
        ("POST", "/unschedule", None),
    ):
        response = await api.request(
            method, f"/api/posts/{ids['mastodon']}{path}", headers=headers, json=body
        )
        assert response.status_code == 409, (path, response.text)
    post = await ok(await api.get(f"/api/posts/{ids['mastodon']}", headers=headers))
    assert (post["publishStatus"], post["body"], post["history"]) == (
        "PUBLISHED",
        "herald 2.0 is out, toot",
        [],
    )


async def test_a_move_on_a_stale_read_loses_to_the_change_that_came_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The publisher takes a scheduled post while its owner discards it: one of them wins."""
    user_id, _, ids = await generated_posts(sessions)
    async with sessions() as session:
        stale = await session.get(Content, ids["x"])
        assert stale is not None and stale.state == "DRAFT"
        await session.commit()  # the read is over; SQLite would hold its lock otherwise
        async with sessions() as other, other.begin():
            await other.execute(
                update(Content).where(Content.id == ids["x"]).values(state="PUBLISHED")
            )
        with pytest.raises(Problem, match="it is PUBLISHED now") as refused:
            await _move(session, user_id, stale, Action.DISCARD, now=datetime.now(UTC), values={})
        assert refused.value.status == 409
    async with sessions() as session:
        assert await session.scalar(select(Content.state).where(Content.id == ids["x"])) == (
            "PUBLISHED"
        )


async def test_an_auto_published_platform_is_scheduled_as_generated(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, _ = await generated_posts(sessions, publish_modes={"mastodon": "auto"})
    states = {
        post["platform"]: (post["publishStatus"], post["publishAt"] is not None)
        for post in (await api.get("/api/posts", headers=headers)).json()["data"]
    }
    assert states == {
        "x": ("DRAFT", False),
        "mastodon": ("SCHEDULED", True),
        "bluesky": ("DRAFT", False),
        "blog": ("DRAFT", False),
    }


async def test_a_project_keeps_its_publish_modes_and_refuses_unknown_ones(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, token = await factories.user_with_token(sessions)
    headers = {"Authorization": f"Bearer {token}"}
    created = await api.post(
        "/api/projects",
        headers=headers,
        json={
            "name": "site",
            "localRepoPath": "site",
            "platforms": ["mastodon", "bluesky"],
            "publishModes": {"bluesky": "auto", "mastodon": "review"},
        },
    )
    assert created.status_code in (200, 201), created.text
    project = created.json()["data"]
    assert project["publishModes"] == {"mastodon": "review", "bluesky": "auto"}
    async with sessions() as session:
        stored = await session.get(Project, project["id"])
        assert stored is not None and stored.publish_modes == {"bluesky": "auto"}

    response = await api.patch(
        f"/api/projects/{project['id']}",
        headers=headers,
        json={"publishModes": {"bluesky": "sometimes"}},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("publishModes")
    response = await api.patch(
        f"/api/projects/{project['id']}", headers=headers, json={"publishModes": {}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["publishModes"] == {"mastodon": "review", "bluesky": "review"}
