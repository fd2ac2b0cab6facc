"""Publishing on real processes: api, scheduler(s) and publisher over PostgreSQL and
RabbitMQ, posting to local Mastodon and Bluesky servers that answer as the networks do.

A post goes out once whatever happens between the network's acceptance and herald's
record of it: an answer lost after the instance committed, a session expired, two
schedulers claiming the same due posts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.db.engine import create_engine, session_factory
from shared.db.schema import Content, Notification, OutboxMessage, PostChange
from shared.secrets import generate_key
from shared.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, signature_matches
from tests.support import processes
from tests.support.fakes.bluesky import FakeBluesky
from tests.support.fakes.mastodon import FakeMastodon
from tests.support.fakes.server import ThreadedServer
from tests.support.polling import poll_async
from tests.support.posts import generated_posts, with_credentials

pytestmark = pytest.mark.e2e

Sessions = async_sessionmaker[AsyncSession]
MASTODON_TOKEN = "mastodon-token-herald"
HANDLE = "herald.bsky.test"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


class Clock:
    """The Bluesky server's clock, which a test moves past its access tokens' lifetime."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return datetime.now(UTC).timestamp() + self.offset


@pytest.fixture
def mastodon() -> Iterator[tuple[FakeMastodon, ThreadedServer]]:
    instance = FakeMastodon()
    instance.add_account("herald", MASTODON_TOKEN)
    server = ThreadedServer(instance.asgi).start()
    yield instance, server
    server.close()


@pytest.fixture
def bluesky_clock() -> Clock:
    return Clock()


@pytest.fixture
def bluesky(bluesky_clock: Clock) -> Iterator[tuple[FakeBluesky, ThreadedServer]]:
    pds = FakeBluesky(clock=bluesky_clock)
    pds.add_account(HANDLE, APP_PASSWORD)
    server = ThreadedServer(pds.asgi).start()
    yield pds, server
    server.close()


@pytest.fixture
def env(fresh_database_url: str, fresh_amqp_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_SECRET_KEY": generate_key(),
        # The local networks listen on loopback, which herald refuses unless allowed.
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        # ... and over plain http, which carries credentials in clear unless allowed.
        "HERALD_WEBHOOK_ALLOW_HTTP": "true",
        "HERALD_SCHEDULER_MAX_SLEEP": "2",
        "HERALD_PUBLISH_RETRY_DELAY": "1",
    }


@pytest.fixture
def stack(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, processes.Service]]:
    with processes.running(("api", "scheduler", "publisher"), env, tmp_path) as services:
        yield services


@pytest.fixture
async def sessions(fresh_database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(fresh_database_url, application_name="herald-tests")
    yield session_factory(engine)
    await engine.dispose()


async def post_row(sessions: Sessions, post_id: str) -> Content:
    async with sessions() as session:
        row = await session.get(Content, post_id)
        assert row is not None
        return row


async def history(sessions: Sessions, post_id: str) -> list[tuple[str, str, str | None]]:
    async with sessions() as session:
        changes = await session.scalars(
            select(PostChange).where(PostChange.content_id == post_id).order_by(PostChange.at)
        )
        return [(change.actor, change.action, change.to_state) for change in changes]


async def credentialed_posts(
    sessions: Sessions, env: dict[str, str], platform: str, settings: dict[str, str], secret: str
) -> dict[str, str]:
    """Generated posts of a new project holding credentials for `platform`; ids by platform."""
    _, _, ids = await generated_posts(sessions, publishing=False)
    row = await post_row(sessions, ids[platform])
    await with_credentials(
        sessions,
        row.project_id or "",
        secret_key=env["HERALD_SECRET_KEY"],
        settings={platform: settings},
        secrets={platform: secret},
    )
    return ids


async def published(sessions: Sessions, post_id: str) -> Content:
    return await poll_async(
        lambda: post_row(sessions, post_id),
        lambda row: row.state in ("PUBLISHED", "FAILED"),
        timeout=60,
    )


async def test_an_approved_post_scheduled_goes_out_once_with_its_link_recorded(
    stack: dict[str, processes.Service],
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    instance, server = mastodon
    _, headers, ids = await generated_posts(sessions, publishing=False)
    api = httpx.AsyncClient(base_url=stack["api"].url, headers=headers, timeout=10)
    post = await api.get(f"/api/posts/{ids['mastodon']}")
    project_id = post.json()["data"]["projectId"]
    refused = await api.post(f"/api/posts/{ids['mastodon']}/schedule")
    assert refused.status_code == 422, refused.text
    assert "no Mastodon credential" in refused.json()["detail"]

    saved = await api.put(
        f"/api/projects/{project_id}/publishing/mastodon",
        json={"instanceUrl": server.url, "accessToken": MASTODON_TOKEN},
    )
    assert saved.status_code == 200, saved.text
    assert MASTODON_TOKEN not in saved.text
    assert (await api.post(f"/api/posts/{ids['mastodon']}/approve")).status_code == 200
    scheduled = await api.post(f"/api/posts/{ids['mastodon']}/schedule")
    assert scheduled.status_code == 200, scheduled.text

    row = await published(sessions, ids["mastodon"])
    assert row.state == "PUBLISHED", row.publish_error
    assert len(instance.statuses) == 1
    status = instance.statuses[0]
    assert status["text"] == "herald 2.0 is out, toot"
    assert row.published_url == status["url"]
    assert row.network_post_id == status["id"]
    assert row.publish_claimed_at is None
    assert (await history(sessions, ids["mastodon"]))[-1] == ("herald", "publish", "PUBLISHED")
    view = (await api.get(f"/api/posts/{ids['mastodon']}")).json()["data"]
    assert (view["publishStatus"], view["publishedUrl"], view["publishedId"]) == (
        "PUBLISHED",
        status["url"],
        status["id"],
    )
    await api.aclose()


class Receiver:
    """A generic webhook receiver: keeps each delivery, checks its signature, answers a URL."""

    def __init__(self) -> None:
        self.secret = ""
        self.deliveries: list[dict[str, Any]] = []
        self.asgi = Starlette(routes=[Route("/herald", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> JSONResponse:
        raw = await request.body()
        signed = signature_matches(self.secret, raw, request.headers.get(SIGNATURE_HEADER))
        if not signed:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        body = json.loads(raw)
        self.deliveries.append({**body, "delivery": request.headers.get(DELIVERY_HEADER)})
        return JSONResponse({"url": f"https://blog.example/posts/{body['postId']}"})


async def test_a_publish_job_publishes_the_projects_approved_posts_once(
    env: dict[str, str],
    tmp_path: Path,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    instance, server = mastodon
    receiver = Receiver()
    hooks = ThreadedServer(receiver.asgi).start()
    # The run that wrote the posts ends before a scanner is there to take its job.due.
    _, headers, ids = await generated_posts(sessions, publishing=False)
    names = ("api", "scheduler", "scanner", "publisher")
    with processes.running(names, env, tmp_path) as services:
        api = httpx.AsyncClient(base_url=services["api"].url, headers=headers, timeout=10)
        project_id = (await api.get(f"/api/posts/{ids['x']}")).json()["data"]["projectId"]
        saved = await api.put(
            f"/api/projects/{project_id}/publishing/mastodon",
            json={"instanceUrl": server.url, "accessToken": MASTODON_TOKEN},
        )
        assert saved.status_code == 200, saved.text
        webhook = await api.put(
            f"/api/projects/{project_id}/publishing/webhook", json={"url": f"{hooks.url}/herald"}
        )
        receiver.secret = webhook.json()["data"]["signingSecret"]
        for platform in ("mastodon", "x"):
            approved = await api.post(f"/api/posts/{ids[platform]}/approve")
            assert approved.status_code == 200, approved.text
        job = await api.post(
            "/api/cron/schedule",
            json={
                "projectId": project_id,
                "name": "publish on Tuesdays",
                "type": "PUBLISH_CONTENT",
                "frequency": "WEEKLY",
                "timeConfig": {"hour": 10, "minute": 0, "dayOfWeek": 2, "timezone": "Europe/Paris"},
            },
        )
        assert job.status_code == 201, job.text
        run = await api.post("/api/cron/trigger", json={"jobId": job.json()["data"]["id"]})
        assert run.status_code == 202, run.text
        execution_id = run.json()["data"]["id"]

        async def execution() -> dict[str, Any]:
            answer = await api.get(f"/api/cron/executions/{execution_id}")
            return dict(answer.json()["data"])

        ended = await poll_async(
            execution, lambda e: e["status"] != "PENDING" and e["status"] != "RUNNING", timeout=60
        )
        assert (ended["status"], ended["itemsProcessed"]) == ("COMPLETED", 2)
        for platform in ("mastodon", "x"):
            row = await published(sessions, ids[platform])
            assert row.state == "PUBLISHED", row.publish_error
        assert len(instance.statuses) == 1
        (delivery,) = receiver.deliveries
        assert (delivery["postId"], delivery["platform"]) == (ids["x"], "x")
        assert delivery["delivery"] == f"herald-post-{ids['x']}"
        assert (await post_row(sessions, ids["x"])).published_url == (
            f"https://blog.example/posts/{ids['x']}"
        )
        assert (await post_row(sessions, ids["bluesky"])).state == "DRAFT"
        await api.aclose()
    hooks.close()


async def test_an_answer_lost_after_the_instance_committed_publishes_nothing_twice(
    stack: dict[str, processes.Service],
    env: dict[str, str],
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    """The instance makes the status and its answer never arrives (a 502 from its proxy):
    the publisher tries again with the same Idempotency-Key and Mastodon answers the first."""
    instance, server = mastodon
    instance.lose_next_answer = True
    ids = await credentialed_posts(
        sessions, env, "mastodon", {"instanceUrl": server.url}, MASTODON_TOKEN
    )
    await schedule_now(sessions, [ids["mastodon"]])

    row = await published(sessions, ids["mastodon"])
    assert row.state == "PUBLISHED", row.publish_error
    posts = [r for r in instance.requests if r["path"] == "/api/v1/statuses"]
    assert len(posts) == 2  # the lost answer, then the repeat
    assert len(instance.statuses) == 1
    assert row.network_post_id == instance.statuses[0]["id"]


async def test_a_publisher_killed_after_the_pds_committed_publishes_nothing_twice(
    stack: dict[str, processes.Service],
    env: dict[str, str],
    sessions: Sessions,
    bluesky: tuple[FakeBluesky, ThreadedServer],
) -> None:
    """The PDS commits the record and holds its answer; the publisher dies before it hears
    it (no ack). The `post.due` is delivered again to the restarted publisher: the record
    key is taken, and the publisher finds the first record there instead of a second."""
    pds, server = bluesky
    pds.delay_next_answer = 60.0
    ids = await credentialed_posts(
        sessions, env, "bluesky", {"serviceUrl": server.url, "identifier": HANDLE}, APP_PASSWORD
    )
    await schedule_now(sessions, [ids["bluesky"]])
    did = pds.accounts[0].did
    await poll_async(lambda: pds.posts(did), timeout=60)
    assert (await post_row(sessions, ids["bluesky"])).state == "SCHEDULED"
    processes.kill(stack["publisher"])
    stack["publisher"] = processes.restart(stack["publisher"])
    processes.wait_ready(stack["publisher"])

    row = await published(sessions, ids["bluesky"])
    assert row.state == "PUBLISHED", row.publish_error
    assert len(pds.posts(did)) == 1
    assert pds.count("com.atproto.repo.createRecord") == 2
    (record,) = [value for (owner, _, _), value in pds.records.items() if owner == did]
    assert row.network_post_id == record["uri"]
    assert [action for _, action, _ in await history(sessions, ids["bluesky"])] == ["publish"]


async def test_an_expired_bluesky_session_is_refreshed_once_and_the_post_goes_out(
    stack: dict[str, processes.Service],
    env: dict[str, str],
    sessions: Sessions,
    bluesky: tuple[FakeBluesky, ThreadedServer],
    bluesky_clock: Clock,
) -> None:
    pds, server = bluesky
    settings = {"serviceUrl": server.url, "identifier": HANDLE}
    first = await credentialed_posts(sessions, env, "bluesky", settings, APP_PASSWORD)
    second = await credentialed_posts(sessions, env, "bluesky", settings, APP_PASSWORD)
    await schedule_now(sessions, [first["bluesky"]])
    assert (await published(sessions, first["bluesky"])).state == "PUBLISHED"
    assert pds.count("com.atproto.server.createSession") == 1

    # The publisher keeps the session; by the next post its access token has expired.
    bluesky_clock.offset = pds.access_lifetime + 60
    await schedule_now(sessions, [second["bluesky"]])
    row = await published(sessions, second["bluesky"])
    assert row.state == "PUBLISHED", row.publish_error
    assert pds.count("com.atproto.server.refreshSession") == 1
    assert pds.count("com.atproto.server.createSession") == 1
    assert len(pds.posts(pds.accounts[0].did)) == 2
    assert row.published_url and row.published_url.startswith("https://bsky.app/profile/")


async def test_two_scheduler_replicas_publish_each_due_post_once(
    stack: dict[str, processes.Service],
    env: dict[str, str],
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
    tmp_path: Path,
) -> None:
    instance, server = mastodon
    second = processes.start("scheduler", env, tmp_path, log_name="scheduler-2")
    stack["scheduler-2"] = second
    processes.wait_ready(second)
    posts = []
    for _ in range(12):
        ids = await credentialed_posts(
            sessions, env, "mastodon", {"instanceUrl": server.url}, MASTODON_TOKEN
        )
        posts.append(ids["mastodon"])
    await schedule_now(sessions, posts)

    for post_id in posts:
        assert (await published(sessions, post_id)).state == "PUBLISHED"
    assert len(instance.statuses) == len(posts)
    async with sessions() as session:
        dues = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.routing_key == "post.due")
        )
        claims = await session.scalars(
            select(Content.publish_attempts).where(Content.id.in_(posts))
        )
        assert list(claims) == [1] * len(posts)
    assert dues == len(posts)
    assert metric(stack["scheduler"]) + metric(second) == len(posts)
    assert metric(stack["scheduler"]) > 0 or metric(second) > 0


def metric(service: processes.Service) -> float:
    with httpx.Client(timeout=5) as client:
        text = client.get(f"{service.url}/metrics").text
    for line in text.splitlines():
        if line.startswith("herald_scheduler_posts_claimed_total "):
            return float(line.split()[-1])
    return 0.0


async def schedule_now(sessions: Sessions, post_ids: list[str]) -> None:
    """Schedule posts for now as the review API does (its checks are the API tests')."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"state": "SCHEDULED", "publish_at": now, "state_changed_at": now}
    async with sessions() as session, session.begin():
        await session.execute(update(Content).where(Content.id.in_(post_ids)).values(**values))


async def test_an_auto_published_post_without_a_credential_fails_saying_so_with_an_alert(
    stack: dict[str, processes.Service], sessions: Sessions
) -> None:
    user_id, _, ids = await generated_posts(
        sessions, publishing=False, publish_modes={"mastodon": "auto"}
    )
    row = await published(sessions, ids["mastodon"])
    assert row.state == "FAILED"
    assert row.publish_error == (
        "the project has no Mastodon credential to publish with: add one on the project's page"
    )
    assert (await history(sessions, ids["mastodon"]))[-1] == ("herald", "fail", "FAILED")
    async with sessions() as session:
        kinds = list(
            await session.scalars(select(Notification.kind).where(Notification.user_id == user_id))
        )
    assert kinds == ["post_failed"]
