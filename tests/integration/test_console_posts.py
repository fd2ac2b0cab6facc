"""The console's post review: the drafts list, an edit refused beside its field with the
network's limit named, approval, and a time chosen on the viewer's own clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import post_actions
from shared.db.schema import Content, PublishingCredential
from shared.secrets import generate_key
from shared.settings import Settings
from tests.support.api import api_client
from tests.support.posts import generated_posts

PUBLIC = "http://herald.test"
ORIGIN = {"Origin": PUBLIC}


@pytest.fixture
async def console(
    database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        amqp_url=fresh_amqp_url,
        local_repos_root=str(tmp_path),
        secret_key=generate_key(),
    )
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


async def signed_in(console: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Sign the console in with the API token of `headers`; return a form token."""
    token = headers["Authorization"].removeprefix("Bearer ")
    answer = await console.post(
        "/console/signin", data={"token": token, "next": "/console/posts"}, headers=ORIGIN
    )
    assert answer.status_code == 303
    page = await console.get("/console/posts")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


async def test_drafts_are_listed_and_a_post_is_edited_approved_and_scheduled_in_my_zone(
    console: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    csrf = await signed_in(console, headers)
    me = await console.patch("/api/me", json={"timezone": "Europe/Berlin"}, headers=headers)
    assert me.status_code == 200, me.text

    drafts = await console.get("/console/posts")
    for post_id in ids.values():
        assert f'href="/console/posts/{post_id}"' in drafts.text
    assert "bluesky post for demo" in drafts.text

    post = f"/console/posts/{ids['bluesky']}"
    page = await console.get(post)
    assert "herald 2.0 is out, skeet" in page.text
    assert "24 / 300 graphemes" in page.text

    refused = await console.post(post, data={"csrf": csrf, "body": "a" * 301}, headers=ORIGIN)
    assert refused.status_code == 422
    assert 'data-error-for="body">301 graphemes, over Bluesky&#39;s 300' in refused.text
    assert "a" * 301 in refused.text  # the text comes back as typed, not lost

    saved = await console.post(post, data={"csrf": csrf, "body": "Shorter now"}, headers=ORIGIN)
    assert saved.status_code == 303
    approved = await console.post(f"{post}/approve", data={"csrf": csrf}, headers=ORIGIN)
    assert approved.status_code == 303
    # 10:00 in Berlin on a summer day is 08:00 UTC.
    scheduled = await console.post(
        f"{post}/schedule",
        data={"csrf": csrf, "when": "at", "publishAt": "2027-07-01T10:00"},
        headers=ORIGIN,
    )
    assert scheduled.status_code == 303, scheduled.text
    stored = (await console.get(f"/api/posts/{ids['bluesky']}", headers=headers)).json()["data"]
    assert (stored["publishStatus"], stored["body"]) == ("SCHEDULED", "Shorter now")
    assert stored["publishAt"] == "2027-07-01T08:00:00Z"
    page = await console.get(post)
    assert "Thu 2027-07-01 10:00 CEST" in page.text
    assert [change["action"] for change in stored["history"]] == ["edit", "approve", "schedule"]


async def test_a_refused_move_says_what_the_post_is_and_a_form_from_elsewhere_changes_nothing(
    console: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    csrf = await signed_in(console, headers)
    post = f"/console/posts/{ids['x']}"

    forged = await console.post(f"{post}/discard", data={"csrf": "forged"}, headers=ORIGIN)
    assert forged.status_code == 403
    assert (
        await console.post(f"{post}/discard", data={"csrf": csrf}, headers=ORIGIN)
    ).status_code == 303
    again = await console.post(f"{post}/discard", data={"csrf": csrf}, headers=ORIGIN)
    assert again.status_code == 409
    assert "cannot discard a DISCARDED post" in again.text
    missing = await console.post(
        f"/console/posts/{ids['mastodon']}/schedule",
        data={"csrf": csrf, "when": "at", "publishAt": ""},
        headers=ORIGIN,
    )
    assert missing.status_code == 422
    assert 'data-error-for="publishAt">choose a date and a time' in missing.text
    stored = (await console.get(f"/api/posts/{ids['mastodon']}", headers=headers)).json()["data"]
    assert stored["publishStatus"] == "DRAFT"


async def test_a_project_publishes_through_credentials_saved_on_its_publishing_page(
    console: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions, publishing=False)
    csrf = await signed_in(console, headers)
    post = (await console.get(f"/api/posts/{ids['mastodon']}", headers=headers)).json()["data"]
    page = f"/console/projects/{post['projectId']}/publishing"
    jobs = await console.get("/console/jobs")
    assert f'href="{page}"' in jobs.text

    refused = await console.post(
        f"{page}/mastodon",
        data={"csrf": csrf, "instanceUrl": "https://127.0.0.1:3000", "accessToken": "tok-secret"},
        headers=ORIGIN,
    )
    assert refused.status_code == 422
    assert 'data-error-for="instanceUrl">must not point to a loopback address' in refused.text
    assert "tok-secret" not in refused.text

    saved = await console.post(
        f"{page}/mastodon",
        data={"csrf": csrf, "instanceUrl": "https://mastodon.example", "accessToken": "tok-secret"},
        headers=ORIGIN,
    )
    assert saved.status_code == 303
    shown = await console.get(page)
    assert "on https://mastodon.example" in shown.text
    assert "tok-secret" not in shown.text

    hook = "https://hooks.example/in/T0KEN?key=T0KEN"
    webhook = await console.post(
        f"{page}/webhook", data={"csrf": csrf, "url": hook}, headers=ORIGIN
    )
    assert webhook.status_code == 200
    assert "T0KEN" not in webhook.text
    secret = re.search(r"<code>([A-Za-z0-9_-]{43,})</code>", webhook.text)
    assert secret is not None
    with_hook = (await console.get(page)).text
    assert secret.group(1) not in with_hook
    # The hint names the headers the publisher really sends (shared.signatures).
    assert "<code>X-Herald-Signature-256: sha256=&lt;hex&gt;</code>" in with_hook
    assert "<code>X-Herald-Event: post</code>" in with_hook
    assert "<code>Herald-" not in with_hook
    # Write-only: the host is shown, the URL (its token) never refilled into the form.
    assert "Delivers to <code>hooks.example</code>" in with_hook
    assert "T0KEN" not in with_hook
    refused_hook = await console.post(
        f"{page}/webhook", data={"csrf": csrf, "url": "ftp://hooks.example/T0KEN"}, headers=ORIGIN
    )
    assert refused_hook.status_code == 422
    assert "T0KEN" not in refused_hook.text

    scheduled = await console.post(
        f"/console/posts/{ids['mastodon']}/schedule",
        data={"csrf": csrf, "when": "now"},
        headers=ORIGIN,
    )
    assert scheduled.status_code == 303, scheduled.text
    removed = await console.post(f"{page}/mastodon/delete", data={"csrf": csrf}, headers=ORIGIN)
    assert removed.status_code == 303
    assert "Remove Mastodon" not in (await console.get(page)).text


async def test_the_run_page_shows_each_posts_state_its_review_and_its_published_link(
    console: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    await signed_in(console, headers)
    url = "https://mastodon.example/@herald/109"
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content)
            .where(Content.id == ids["mastodon"])
            .values(state="PUBLISHED", published_url=url, published_at=datetime.now(UTC))
        )
        execution_id = await session.scalar(
            select(Content.execution_id).where(Content.id == ids["mastodon"])
        )
    api_view = (await console.get(f"/api/cron/executions/{execution_id}", headers=headers)).json()
    by_platform = {post["platform"]: post for post in api_view["data"]["content"]}
    assert (by_platform["mastodon"]["publishStatus"], by_platform["mastodon"]["publishedUrl"]) == (
        "PUBLISHED",
        url,
    )
    page = await console.get(f"/console/executions/{execution_id}")
    for post_id in ids.values():
        assert f'href="/console/posts/{post_id}"' in page.text
    assert f'class="published-link" href="{url}"' in page.text


async def test_the_history_names_a_step_taken_from_the_command_line(
    console: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user_id, headers, ids = await generated_posts(sessions)
    await signed_in(console, headers)
    async with sessions() as session:
        await post_actions.approve(session, user_id, ids["x"], actor="cli:alice")
    assert (await console.post(f"/api/posts/{ids['x']}/discard", headers=headers)).is_success

    page = await console.get(f"/console/posts/{ids['x']}")

    assert "DRAFT → APPROVED by alice (command line)" in page.text
    assert "APPROVED → DISCARDED by you" in page.text


async def test_the_length_counter_uses_the_mastodon_instances_own_limits(
    console: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    await signed_in(console, headers)
    post_id = ids["mastodon"]
    project_id = (await console.get(f"/api/posts/{post_id}", headers=headers)).json()["data"][
        "projectId"
    ]
    body = "a" * 600 + " https://example.org/notes"
    async with sessions() as session, session.begin():
        await session.execute(update(Content).where(Content.id == post_id).values(body=body))
        # As the publisher reported them after publishing there.
        await session.execute(
            update(PublishingCredential)
            .where(PublishingCredential.project_id == project_id)
            .where(PublishingCredential.network == "mastodon")
            .values(max_characters=1000, characters_reserved_per_url=30)
        )

    page = await console.get(f"/console/posts/{post_id}")

    # The API's own check: a link counts 30 there, and 631 is within the instance's 1000.
    assert '<span class="characters">631 / 1000 characters as Mastodon counts them' in page.text
