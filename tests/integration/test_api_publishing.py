"""Publishing through the API: credentials saved write-only and checked, scheduling refused
without a way to publish, review refused while a scheduler holds the post, and the
publisher's outcomes applied once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.batch import apply_events
from services.api.triggers import trigger_manually
from shared.db.schema import (
    Content,
    CronJob,
    Execution,
    Notification,
    OutboxMessage,
    PostChange,
    Project,
    PublishingCredential,
)
from shared.events import (
    ActivityScanned,
    ActivitySummary,
    ContentGenerated,
    JobType,
    PostFailed,
    PostPublished,
    PostResult,
    StepStarted,
)
from shared.secrets import decrypt, generate_key
from shared.settings import Settings
from tests.support import factories
from tests.support.api import api_client, problem
from tests.support.posts import generated_posts

PUBLIC = "http://herald.test"
TOKEN = "mastodon-access-token-0123456789"
KEY = generate_key()
# Such URLs often carry the receiver's token in the path or the query.
HOOK_URL = "https://hooks.example/herald/T0KEN?key=T0KEN"


@pytest.fixture
async def api(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in api_client(api_settings(secret_key=KEY)):
        yield client


async def project_of(api: httpx.AsyncClient, headers: dict[str, str], post_id: str) -> str:
    post = await api.get(f"/api/posts/{post_id}", headers=headers)
    return str(post.json()["data"]["projectId"])


async def test_credentials_are_write_only_and_encrypted_at_rest(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions, publishing=False)
    project = await project_of(api, headers, ids["mastodon"])
    saved = await api.put(
        f"/api/projects/{project}/publishing/mastodon",
        headers=headers,
        json={"instanceUrl": "https://mastodon.example/", "accessToken": TOKEN},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["data"]["instanceUrl"] == "https://mastodon.example"
    assert TOKEN not in saved.text

    shown = await api.get(f"/api/projects/{project}", headers=headers)
    publishing = shown.json()["data"]["publishing"]
    assert publishing["mastodon"]["set"] is True
    assert publishing["bluesky"] == {"set": False}
    assert TOKEN not in shown.text
    async with sessions() as session:
        row = await session.get(PublishingCredential, (project, "mastodon"))
    assert row is not None
    assert TOKEN not in row.secret_encrypted
    assert decrypt(row.secret_encrypted, KEY) == TOKEN

    webhook = await api.put(
        f"/api/projects/{project}/publishing/webhook",
        headers=headers,
        json={"url": HOOK_URL},
    )
    assert webhook.status_code == 200, webhook.text
    secret = webhook.json()["data"]["signingSecret"]
    assert len(secret) >= 43  # 256 random bits, URL-safe base64
    assert webhook.json()["data"]["urlHost"] == "hooks.example"
    assert "T0KEN" not in webhook.text
    again = await api.get(f"/api/projects/{project}", headers=headers)
    assert secret not in again.text
    assert "T0KEN" not in again.text
    assert again.json()["data"]["publishing"]["webhook"]["set"] is True
    assert again.json()["data"]["publishing"]["webhook"]["urlHost"] == "hooks.example"
    async with sessions() as session:
        hook = await session.get(PublishingCredential, (project, "webhook"))
    assert hook is not None and hook.url_encrypted is not None
    assert "T0KEN" not in str(hook.settings) and "T0KEN" not in hook.url_encrypted
    assert decrypt(hook.url_encrypted, KEY) == HOOK_URL

    gone = await api.delete(f"/api/projects/{project}/publishing/mastodon", headers=headers)
    assert gone.json()["data"]["mastodon"] == {"set": False}


@pytest.mark.parametrize(
    ("network", "body", "field", "words"),
    [
        (
            "mastodon",
            {"instanceUrl": "https://127.0.0.1:3000", "accessToken": "t"},
            "instanceUrl",
            "loopback",
        ),
        (
            "mastodon",
            {"instanceUrl": "https://10.0.0.5", "accessToken": "t"},
            "instanceUrl",
            "private",
        ),
        (
            "mastodon",
            {"instanceUrl": "https://m.example/api", "accessToken": "t"},
            "instanceUrl",
            "no path",
        ),
        ("mastodon", {"instanceUrl": "https://m.example"}, "accessToken", "required"),
        ("bluesky", {"identifier": "not a handle", "appPassword": "p"}, "identifier", "handle"),
        (
            "bluesky",
            {
                "serviceUrl": "https://localhost:2583",
                "identifier": "a.bsky.social",
                "appPassword": "p",
            },
            "serviceUrl",
            "loopback",
        ),
        ("webhook", {"url": "ftp://hooks.example/x"}, "url", "http"),
        # Credentials never travel in clear (HERALD_WEBHOOK_ALLOW_HTTP is off).
        (
            "mastodon",
            {"instanceUrl": "http://m.example", "accessToken": "t"},
            "instanceUrl",
            "must be an https URL",
        ),
        (
            "bluesky",
            {"serviceUrl": "http://pds.example", "identifier": "a.bsky.social", "appPassword": "p"},
            "serviceUrl",
            "must be an https URL",
        ),
        ("webhook", {"url": "http://hooks.example/x"}, "url", "must be an https URL"),
        (
            "webhook",
            {"url": "https://hooks.example/x", "accessToken": "t"},
            "accessToken",
            "not a webhook setting",
        ),
    ],
)
async def test_a_credential_herald_must_not_use_is_refused_naming_the_field(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    network: str,
    body: dict[str, str],
    field: str,
    words: str,
) -> None:
    _, headers, ids = await generated_posts(sessions, publishing=False)
    project = await project_of(api, headers, ids["mastodon"])
    response = await api.put(
        f"/api/projects/{project}/publishing/{network}", headers=headers, json=body
    )
    refused = problem(response, 422, field)
    assert words in refused["detail"]


async def test_plain_http_is_saved_only_where_the_operator_allows_it(
    api_settings: Callable[..., Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions, publishing=False)
    async for client in api_client(api_settings(secret_key=KEY, webhook_allow_http=True)):
        project = await project_of(client, headers, ids["mastodon"])
        saved = await client.put(
            f"/api/projects/{project}/publishing/webhook",
            headers=headers,
            json={"url": "http://hooks.example/in"},
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["data"]["urlHost"] == "hooks.example"


async def test_scheduling_without_a_way_to_publish_is_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions, publishing=False)
    for platform, words in (("bluesky", "no Bluesky credential"), ("x", "no generic webhook")):
        response = await api.post(f"/api/posts/{ids[platform]}/schedule", headers=headers)
        assert words in problem(response, 422, "platform")["detail"]


async def test_a_post_a_scheduler_claimed_is_not_reviewed_until_it_is_done(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, headers, ids = await generated_posts(sessions)
    post = ids["mastodon"]
    assert (await api.post(f"/api/posts/{post}/schedule", headers=headers)).status_code == 200
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == post).values(publish_claimed_at=datetime.now(UTC))
        )
    for method, path, body in (
        ("PATCH", "", {"body": "an edit too late"}),
        ("POST", "/unschedule", None),
        ("POST", "/discard", None),
    ):
        response = await api.request(method, f"/api/posts/{post}{path}", headers=headers, json=body)
        assert "being published" in problem(response, 409)["detail"]
    row = (await api.get(f"/api/posts/{post}", headers=headers)).json()["data"]
    assert (row["publishStatus"], row["body"]) == ("SCHEDULED", "herald 2.0 is out, toot")


async def test_the_publishers_outcomes_are_applied_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user_id, headers, ids = await generated_posts(sessions)
    for platform in ("mastodon", "bluesky"):
        response = await api.post(f"/api/posts/{ids[platform]}/schedule", headers=headers)
        assert response.status_code == 200
    async with sessions() as session:
        row = await session.get(Content, ids["mastodon"])
        assert row is not None
    envelope = {"execution_id": row.execution_id, "job_id": "job", "project_id": "p"}
    at = datetime(2031, 3, 1, 10, 0, tzinfo=UTC)
    done = PostPublished(
        **envelope,
        post_id=ids["mastodon"],
        network="mastodon",
        url="https://mastodon.example/@herald/1",
        network_post_id="1",
        published_at=at,
    )
    await apply_events(sessions, [done], public_url=PUBLIC)
    await apply_events(sessions, [done], public_url=PUBLIC)  # redelivered: the inbox drops it
    # A second claim's publication answers the same post under another event id.
    again = done.model_copy(update={"event_id": "evt-another", "earlier": True})
    await apply_events(sessions, [again], public_url=PUBLIC)

    failing = {**envelope, "post_id": ids["bluesky"], "platform": "bluesky"}
    claimed_at = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content)
            .where(Content.id == ids["bluesky"])
            .values(publish_claimed_at=claimed_at, publish_first_claimed_at=claimed_at)
        )
    next_try = datetime(2031, 3, 1, 11, 30, tzinfo=UTC)
    not_yet = PostFailed(
        **failing, reason="Bluesky unreachable", final=False, next_attempt_at=next_try
    )
    await apply_events(sessions, [not_yet], public_url=PUBLIC)
    async with sessions() as session:
        waiting = await session.get(Content, ids["bluesky"])
        assert waiting is not None
        assert (waiting.state, waiting.publish_error) == ("SCHEDULED", "Bluesky unreachable")
        # The claim moves to the next attempt: the lease counts from there, and the scheduler
        # does not start a second chain while this one waits; the first claim is kept.
        assert (waiting.publish_claimed_at, waiting.publish_first_claimed_at) == (
            next_try,
            claimed_at,
        )
    final = PostFailed(**failing, reason="Bluesky 400 InvalidRequest: bad record", final=True)
    await apply_events(sessions, [final, final], public_url=PUBLIC)

    async with sessions() as session:
        mastodon = await session.get(Content, ids["mastodon"])
        bluesky = await session.get(Content, ids["bluesky"])
        changes = (
            await session.execute(
                select(PostChange.content_id, PostChange.actor, PostChange.to_state)
                .where(PostChange.actor == "herald")
                .where(PostChange.content_id.in_([ids["mastodon"], ids["bluesky"]]))
            )
        ).all()
        alerts = (
            await session.scalars(select(Notification).where(Notification.user_id == user_id))
        ).all()
    assert mastodon is not None and bluesky is not None
    assert (mastodon.state, mastodon.published_url, mastodon.published_at) == (
        "PUBLISHED",
        "https://mastodon.example/@herald/1",
        at,
    )
    assert (bluesky.state, bluesky.publish_error) == (
        "FAILED",
        "Bluesky 400 InvalidRequest: bad record",
    )
    assert (bluesky.publish_claimed_at, bluesky.publish_first_claimed_at) == (None, None)
    assert sorted(changes) == sorted(
        [(ids["mastodon"], "herald", "PUBLISHED"), (ids["bluesky"], "herald", "FAILED")]
    )
    assert [(alert.kind, alert.title, alert.body) for alert in alerts] == [
        (
            "post_failed",
            "daily: a bluesky post could not be published",
            "Project demo: Bluesky 400 InvalidRequest: bad record",
        )
    ]
    assert alerts[0].link == f"{PUBLIC}/console/posts/{ids['bluesky']}"
    async with sessions() as session:
        mails = (
            await session.scalars(
                select(OutboxMessage.payload).where(
                    OutboxMessage.routing_key == "post.unpublished",
                    OutboxMessage.payload.contains(ids["bluesky"]),
                )
            )
        ).all()
    (mail,) = mails  # once, though the failure was delivered twice
    assert '"reason":"Bluesky 400 InvalidRequest: bad record"' in mail


async def test_a_publish_run_schedules_its_upstream_runs_approved_posts_only(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user_id, headers, first = await generated_posts(sessions)
    async with sessions() as session:
        upstream = await session.get(Content, first["mastodon"])
        assert upstream is not None
        project = await session.get(Project, upstream.project_id)
        assert project is not None
    for post in (first["mastodon"], first["bluesky"]):
        assert (await api.post(f"/api/posts/{post}/approve", headers=headers)).status_code == 200
    # An approved post of another run of the project: not the upstream's, left as it is.
    other_job = await factories.job(sessions, project, next_run_at=None, name="other")
    other = await generated_run(sessions, project, other_job, user_id)
    assert (await api.post(f"/api/posts/{other}/approve", headers=headers)).status_code == 200

    publisher = await factories.job(
        sessions, project, next_run_at=None, name="publish", type="PUBLISH_CONTENT"
    )
    publish_run = await generated_run(
        sessions, project, publisher, user_id, upstream=upstream.execution_id, generate=False
    )
    envelope = {"execution_id": publish_run, "job_id": publisher.id, "project_id": project.id}
    window = datetime.now(UTC)
    scanned = ActivityScanned(
        **envelope,
        summary=ActivitySummary(),
        platforms=["mastodon"],
        repository={"localPath": "repo"},
        window_start=None,
        window_end=window,
        deadline=window + timedelta(minutes=15),
        job_type=JobType.PUBLISH_CONTENT,
    )
    await apply_events(sessions, [StepStarted(**envelope, step="scan")], public_url=PUBLIC)
    await apply_events(sessions, [scanned, scanned], public_url=PUBLIC)

    async with sessions() as session:
        run = await session.get(Execution, publish_run)
        states = {
            row.id: row.state
            for row in await session.scalars(
                select(Content).where(Content.id.in_([*first.values(), other]))
            )
        }
        detail = await session.scalar(
            select(PostChange.detail)
            .where(PostChange.content_id == first["mastodon"])
            .where(PostChange.actor == "herald")
        )
    assert run is not None
    assert (run.status, run.items_processed, run.items_success) == ("COMPLETED", 2, 2)
    assert states[first["mastodon"]] == states[first["bluesky"]] == "SCHEDULED"
    assert states[first["x"]] == "DRAFT"
    assert states[other] == "APPROVED"
    assert detail is not None and publish_run in detail


async def generated_run(
    sessions: async_sessionmaker[AsyncSession],
    project: Project,
    job: CronJob,
    user_id: str,
    *,
    upstream: str | None = None,
    generate: bool = True,
) -> str:
    """A manual run of `job`; with `generate`, its one mastodon post's id, else the run's."""
    async with sessions() as session, session.begin():
        job_row = await session.get(CronJob, job.id)
        project_row = await session.get(Project, project.id)
        assert job_row is not None and project_row is not None
        execution = await trigger_manually(
            session, job=job_row, project=project_row, user_id=user_id
        )
        if upstream is not None:
            await session.execute(
                update(Execution)
                .where(Execution.id == execution.id)
                .values(upstream_execution_id=upstream)
            )
    if not generate:
        return execution.id
    envelope = {"execution_id": execution.id, "job_id": job.id, "project_id": project.id}
    result = PostResult(platform="mastodon", status="GENERATED", body="another run's toot")
    await apply_events(
        sessions,
        [StepStarted(**envelope, step="generate"), ContentGenerated(**envelope, results=[result])],
        public_url=PUBLIC,
    )
    async with sessions() as session:
        post_id = await session.scalar(
            select(Content.id).where(Content.execution_id == execution.id)
        )
    assert post_id is not None
    return post_id
