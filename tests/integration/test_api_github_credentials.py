"""A project's GitHub credential: an App installation or a write-only token, and what it uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import installation_grants
from services.api.lifecycle import apply_event
from shared.db.schema import OutboxMessage, Project
from shared.events import ActivityScanned, ActivitySummary, RateLimitSeen, Repository
from shared.secrets import decrypt, generate_key
from shared.settings import Settings
from tests.support import factories
from tests.support.api import api_client, signed_in

KEY = generate_key()
# An installation-style token: about 520 characters, stored whole.
LONG_TOKEN = "ghs_12345_" + "x" * 510
TOKEN = "github_pat_11AAAAAAA0secret0project0token"


def settings_for(database_url: str, amqp_url: str, **extra: str) -> Settings:
    return Settings(database_url=database_url, amqp_url=amqp_url, secret_key=KEY, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def api(database_url: str, fresh_amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(database_url, fresh_amqp_url, github_app_id="12345")
    async for client in api_client(settings):
        yield client


async def stored(sessions: async_sessionmaker[AsyncSession], project_id: str) -> Project:
    async with sessions() as session:
        project = await session.get(Project, project_id)
    assert project is not None
    return project


async def create(api: httpx.AsyncClient, auth: dict[str, str], **fields: object) -> httpx.Response:
    body = {"name": "p", "githubRepoOwner": "octo", "githubRepoName": "repo", **fields}
    return await api.post("/api/projects", headers=auth, json=body)


async def test_a_token_is_stored_encrypted_never_shown_kept_and_removed(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auth = await signed_in(sessions)

    created = await create(api, auth, githubToken=LONG_TOKEN)

    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert LONG_TOKEN not in created.text
    assert (data["githubTokenSet"], data["githubCredential"]) == (True, "token")
    assert data["githubInstallationId"] is None and data["githubRateLimit"] is None
    row = await stored(sessions, data["id"])
    assert row.github_token_encrypted is not None and LONG_TOKEN not in row.github_token_encrypted
    assert decrypt(row.github_token_encrypted, KEY) == LONG_TOKEN

    renamed = await api.patch(f"/api/projects/{data['id']}", headers=auth, json={"name": "q"})
    assert renamed.json()["data"]["githubTokenSet"] is True  # left out: kept
    assert decrypt((await stored(sessions, data["id"])).github_token_encrypted or "", KEY)

    removed = await api.patch(f"/api/projects/{data['id']}", headers=auth, json={"githubToken": ""})
    assert removed.json()["data"]["githubTokenSet"] is False
    assert removed.json()["data"]["githubCredential"] == "global"
    assert (await stored(sessions, data["id"])).github_token_encrypted is None
    listed = await api.get("/api/projects", headers=auth)
    assert LONG_TOKEN not in listed.text


async def user(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, dict[str, str]]:
    """A new user's id and the headers of its bearer token."""
    user_id, token = await factories.user_with_token(sessions)
    return user_id, {"Authorization": f"Bearer {token}"}


async def test_an_installation_is_connected_and_disconnected(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user_id, auth = await user(sessions)
    await factories.grant_installation(sessions, user_id, 41_002)
    project_id = (await create(api, auth)).json()["data"]["id"]

    connected = await api.patch(
        f"/api/projects/{project_id}", headers=auth, json={"githubInstallationId": 41_002}
    )

    assert connected.status_code == 200, connected.text
    data = connected.json()["data"]
    assert (data["githubInstallationId"], data["githubCredential"]) == (41_002, "app")
    cleared = await api.patch(
        f"/api/projects/{project_id}", headers=auth, json={"githubInstallationId": None}
    )
    assert cleared.json()["data"]["githubInstallationId"] is None
    assert (await stored(sessions, project_id)).github_installation_id is None


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"githubInstallationId": 0}, "githubInstallationId", "greater than or equal to 1"),
        ({"githubInstallationId": "7"}, "githubInstallationId", "valid integer"),
        ({"githubToken": "has space"}, "githubToken", "pattern"),
        ({"githubToken": "x" * 2001}, "githubToken", "at most 2000"),
        (
            {"githubInstallationId": 7, "githubBaseUrl": "https://ghe.example.com/api/v3"},
            "githubInstallationId",
            "reads only https://api.github.com",
        ),
    ],
)
async def test_bad_credentials_are_refused_naming_the_field_and_the_rule(
    database_url: str,
    fresh_amqp_url: str,
    sessions: async_sessionmaker[AsyncSession],
    body: dict[str, object],
    field: str,
    rule: str,
) -> None:
    settings = settings_for(
        database_url,
        fresh_amqp_url,
        github_app_id="12345",
        github_enterprise_origins="https://ghe.example.com",
    )
    auth = await signed_in(sessions)
    async for api in api_client(settings):
        refused = await create(api, auth, **body)

        assert refused.status_code == 422, refused.text
        error = refused.json()["errors"][0]
        assert error["field"] == field
        assert rule in error["message"]


async def test_an_installation_is_refused_where_no_github_app_is_configured(
    database_url: str, fresh_amqp_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auth = await signed_in(sessions)
    async for api in api_client(settings_for(database_url, fresh_amqp_url)):
        refused = await create(api, auth, githubInstallationId=7)

        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "githubInstallationId"
        assert "HERALD_GITHUB_APP_ID" in refused.json()["errors"][0]["message"]


async def test_job_due_carries_the_token_encrypted_and_the_installation(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user_id, auth = await user(sessions)
    await factories.grant_installation(sessions, user_id, 41_002)
    project_id = (await create(api, auth, githubToken=TOKEN, githubInstallationId=41_002)).json()[
        "data"
    ]["id"]
    job = await api.post(
        "/api/cron/schedule",
        headers=auth,
        json={
            "projectId": project_id,
            "name": "d",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        },
    )
    assert job.status_code == 201, job.text
    triggered = await api.post(
        "/api/cron/trigger", headers=auth, json={"jobId": job.json()["data"]["id"]}
    )
    assert triggered.status_code == 202, triggered.text

    async with sessions() as session:
        payloads = (
            await session.scalars(
                select(OutboxMessage.payload).where(OutboxMessage.routing_key == "job.due")
            )
        ).all()
    (payload,) = [p for p in payloads if project_id in p]
    assert TOKEN not in payload
    credential = json.loads(payload)["githubCredential"]
    assert credential["installationId"] == 41_002
    assert decrypt(credential["token"], KEY) == TOKEN


async def test_an_installation_not_granted_to_the_account_is_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Bob names the installation Alice was granted: it is hers, not his."""
    alice, _ = await user(sessions)
    await factories.grant_installation(sessions, alice, 41_002)
    bob, bob_auth = await user(sessions)
    await factories.grant_installation(sessions, bob, 41_003)
    rule = (
        "installation 41002 is not granted to this account; an operator grants it with "
        "`herald installations grant`"
    )

    created = await create(api, bob_auth, githubInstallationId=41_002)
    project_id = (await create(api, bob_auth)).json()["data"]["id"]
    patched = await api.patch(
        f"/api/projects/{project_id}", headers=bob_auth, json={"githubInstallationId": 41_002}
    )
    own = await api.patch(
        f"/api/projects/{project_id}", headers=bob_auth, json={"githubInstallationId": 41_003}
    )

    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [{"field": "githubInstallationId", "message": rule}]
    assert own.status_code == 200, own.text
    assert own.json()["data"]["githubInstallationId"] == 41_003
    async with sessions() as session:
        projects = (await session.scalars(select(Project).where(Project.user_id == bob))).all()
    assert [p.github_installation_id for p in projects] == [41_003]


async def test_a_revoked_grant_takes_the_installation_off_the_users_projects_and_job_due(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice, alice_auth = await user(sessions)
    bob, bob_auth = await user(sessions)
    for user_id in (alice, bob):  # one organisation's installation, granted to two of its people
        await factories.grant_installation(sessions, user_id, 41_002)
    alices = (await create(api, alice_auth, githubInstallationId=41_002)).json()["data"]["id"]
    bobs = (await create(api, bob_auth, githubInstallationId=41_002)).json()["data"]["id"]

    async with sessions() as session, session.begin():
        cleared = await installation_grants.revoke(session, installation_id=41_002, user_id=alice)
    job = await api.post(
        "/api/cron/schedule",
        headers=alice_auth,
        json={
            "projectId": alices,
            "name": "d",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        },
    )
    triggered = await api.post(
        "/api/cron/trigger", headers=alice_auth, json={"jobId": job.json()["data"]["id"]}
    )
    again = await api.patch(
        f"/api/projects/{alices}", headers=alice_auth, json={"githubInstallationId": 41_002}
    )

    assert cleared == [alices]
    assert (await stored(sessions, alices)).github_installation_id is None
    assert (await stored(sessions, bobs)).github_installation_id == 41_002  # Bob's grant stands
    assert triggered.status_code == 202, triggered.text
    async with sessions() as session:
        payloads = (
            await session.scalars(
                select(OutboxMessage.payload).where(OutboxMessage.routing_key == "job.due")
            )
        ).all()
    (payload,) = [p for p in payloads if alices in p]
    assert json.loads(payload).get("githubCredential") is None
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "githubInstallationId"


async def test_the_latest_scan_tells_which_credential_and_what_budget_is_left(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auth = await signed_in(sessions)
    project_id = (await create(api, auth)).json()["data"]["id"]
    job = await api.post(
        "/api/cron/schedule",
        headers=auth,
        json={
            "projectId": project_id,
            "name": "d",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        },
    )
    execution = await api.post(
        "/api/cron/trigger", headers=auth, json={"jobId": job.json()["data"]["id"]}
    )
    reset = datetime(2030, 1, 1, tzinfo=UTC)
    envelope = {
        "execution_id": execution.json()["data"]["id"],
        "job_id": job.json()["data"]["id"],
        "project_id": project_id,
    }

    await apply_event(
        sessions,
        ActivityScanned(
            **envelope,
            summary=ActivitySummary(),
            platforms=["x"],
            repository=Repository(owner="octo", name="repo"),
            window_start=None,
            window_end=datetime.now(UTC),
            deadline=datetime.now(UTC) + timedelta(minutes=15),
            github_credential="global",
            github_rate_limit=RateLimitSeen(limit=12_500, remaining=12_400, reset_at=reset),
        ),
        public_url="http://herald.test",
    )

    data = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert data["githubCredential"] == "global"
    assert data["githubRateLimit"] == {
        "limit": 12_500,
        "remaining": 12_400,
        "resetAt": "2030-01-01T00:00:00Z",
    }
    # A scan that began before its installation was revoked reports `app` late: the project
    # names no installation, so it is not shown as reading through the App.
    again = await api.post(
        "/api/cron/trigger", headers=auth, json={"jobId": job.json()["data"]["id"]}
    )
    late = {**envelope, "execution_id": again.json()["data"]["id"]}
    await apply_event(
        sessions,
        ActivityScanned(
            **late,
            summary=ActivitySummary(),
            platforms=["x"],
            repository=Repository(owner="octo", name="repo"),
            window_start=None,
            window_end=datetime.now(UTC),
            deadline=datetime.now(UTC) + timedelta(minutes=15),
            github_credential="app",
        ),
        public_url="http://herald.test",
    )
    data = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert data["githubCredential"] == "global"
    # A credential changed by hand forgets what the last scan said of the previous one.
    changed = await api.patch(
        f"/api/projects/{project_id}", headers=auth, json={"githubToken": TOKEN}
    )
    assert changed.json()["data"]["githubCredential"] == "token"
    assert changed.json()["data"]["githubRateLimit"] is None


@pytest.mark.postgresql_only(reason="row locks: SQLite runs one writer at a time anyway")
async def test_a_revoke_racing_a_connect_still_leaves_the_project_without_the_installation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(sessions)
    await factories.grant_installation(sessions, user_id, 41_002)
    project_id = (await factories.project(sessions, user_id)).id

    async with sessions() as connecting, connecting.begin():
        # The connect has checked the grant and not yet stored the installation...
        assert await installation_grants.holds_grant(
            connecting, installation_id=41_002, user_id=user_id
        )

        async def revoke() -> list[str] | None:
            async with sessions() as revoking, revoking.begin():
                return await installation_grants.revoke(
                    revoking, installation_id=41_002, user_id=user_id
                )

        revoking = asyncio.create_task(revoke())
        await asyncio.sleep(0.3)
        assert not revoking.done()  # ...so the revoke waits for it
        project = await connecting.get(Project, project_id)
        assert project is not None
        project.github_installation_id = 41_002

    assert await revoking == [project_id]
    assert (await stored(sessions, project_id)).github_installation_id is None
