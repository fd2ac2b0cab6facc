"""herald's GitHub App webhook: signed `installation` and `installation_repositories`
deliveries say what its installations may read, and the projects naming one carry it to the
scanner (on PostgreSQL and SQLite)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import GitHubAppDelivery, GitHubInstallation, OutboxMessage
from shared.events import JobDue
from shared.secrets import generate_key
from shared.settings import Settings
from shared.signatures import signature_of
from tests.support import factories
from tests.support.api import api_client, new_job

APP_SECRET = "app-hook-secret-0123456789"
INSTALLATION = 52_001


@pytest.fixture
async def api(database_url: str, fresh_amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        amqp_url=fresh_amqp_url,
        secret_key=generate_key(),  # type: ignore[arg-type]
        github_app_id="12345",
        github_app_webhook_secret=APP_SECRET,  # type: ignore[arg-type]
    )
    async for client in api_client(settings):
        yield client


def installation_payload(
    action: str, *, installation_id: int = INSTALLATION, **extra: Any
) -> dict[str, Any]:
    """As GitHub sends it (PROTOCOLS §7: `installation/created.payload.json` and kin)."""
    return {
        "action": action,
        "installation": {
            "id": installation_id,
            "account": {"login": "octo-org", "type": "Organization"},
            "repository_selection": "selected",
            "suspended_at": None,
        },
        "sender": {"login": "ada"},
        **extra,
    }


async def deliver(
    api: httpx.AsyncClient,
    event: str,
    payload: dict[str, Any],
    *,
    delivery: str | None = None,
    secret: str = APP_SECRET,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/0000000",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-Hub-Signature-256": signature_of(secret, body),
    }
    return await api.post("/api/webhooks/github", content=body, headers=headers)


async def connected_project(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], installation_id: int
) -> tuple[str, dict[str, str]]:
    user_id, token = await factories.user_with_token(sessions)
    auth = {"Authorization": f"Bearer {token}"}
    await factories.grant_installation(sessions, user_id, installation_id)
    made = await api.post(
        "/api/projects",
        headers=auth,
        json={
            "name": "p",
            "githubRepoOwner": "octo-org",
            "githubRepoName": "app",
            "githubInstallationId": installation_id,
        },
    )
    assert made.status_code == 201, made.text
    return made.json()["data"]["id"], auth


async def installation(
    sessions: async_sessionmaker[AsyncSession], installation_id: int = INSTALLATION
) -> GitHubInstallation:
    async with sessions() as session:
        row = await session.get(GitHubInstallation, installation_id)
    assert row is not None
    return row


async def sent_credential(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    project_id: str,
    auth: dict[str, str],
) -> Any:
    """The credential a manual run's `job.due` carries to the scanner."""
    job = await new_job(api, auth, project_id)
    fired = await api.post("/api/cron/trigger", headers=auth, json={"jobId": job["id"]})
    assert fired.status_code == 202, fired.text
    async with sessions() as session:
        payloads = await session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.routing_key == "job.due")
        )
        due = [JobDue.model_validate_json(text) for text in payloads]
    [event] = [event for event in due if event.job_id == job["id"]]
    return event.github_credential


async def test_created_records_the_installation_and_its_repositories(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    installation_id = INSTALLATION + 1
    payload = installation_payload(
        "created",
        installation_id=installation_id,
        repositories=[
            {"id": 1, "name": "app", "full_name": "octo-org/app", "private": True},
            {"id": 2, "name": "web", "full_name": "octo-org/web", "private": False},
        ],
    )
    delivery = str(uuid.uuid4())

    answered = await deliver(api, "installation", payload, delivery=delivery)

    assert answered.status_code == 200, answered.text
    data = answered.json()["data"]
    assert (data["installationId"], data["status"], data["duplicate"]) == (
        installation_id,
        "active",
        False,
    )
    row = await installation(sessions, installation_id)
    assert (row.account_login, row.account_type, row.repository_selection) == (
        "octo-org",
        "Organization",
        "selected",
    )
    assert row.repositories == ["octo-org/app", "octo-org/web"]

    added = await deliver(
        api,
        "installation_repositories",
        installation_payload(
            "added",
            installation_id=installation_id,
            repositories_added=[{"id": 3, "full_name": "octo-org/docs"}],
            repositories_removed=[],
        ),
    )
    assert added.status_code == 200, added.text
    removed = await deliver(
        api,
        "installation_repositories",
        installation_payload(
            "removed",
            installation_id=installation_id,
            repositories_added=[],
            repositories_removed=[{"id": 2, "full_name": "octo-org/web"}],
        ),
    )
    assert removed.status_code == 200, removed.text
    assert (await installation(sessions, installation_id)).repositories == [
        "octo-org/app",
        "octo-org/docs",
    ]

    # GitHub redelivers by hand with the same id: nothing is applied twice.
    again = await deliver(api, "installation", payload, delivery=delivery)
    assert again.json()["data"]["duplicate"] is True
    assert (await installation(sessions, installation_id)).repositories == [
        "octo-org/app",
        "octo-org/docs",
    ]


async def test_suspend_and_unsuspend_reach_the_projects_and_their_runs(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    project_id, auth = await connected_project(api, sessions, INSTALLATION)
    shown = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert shown["githubInstallationStatus"] == "active"

    suspended = await deliver(
        api,
        "installation",
        installation_payload(
            "suspend",
            installation={
                "id": INSTALLATION,
                "account": {"login": "octo-org", "type": "Organization"},
                "suspended_at": "2026-03-02T10:00:00Z",
                "suspended_by": {"login": "ada"},
            },
        ),
    )

    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["data"]["status"] == "suspended"
    assert suspended.json()["data"]["projects"] == [project_id]
    shown = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert shown["githubInstallationStatus"] == "suspended"
    credential = await sent_credential(api, sessions, project_id, auth)
    assert (credential.installation_id, credential.installation_status) == (
        INSTALLATION,
        "suspended",
    )

    unsuspended = await deliver(api, "installation", installation_payload("unsuspend"))
    assert unsuspended.json()["data"]["status"] == "active"
    shown = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert shown["githubInstallationStatus"] == "active"
    assert (await sent_credential(api, sessions, project_id, auth)).installation_status is None


async def test_an_older_state_redelivered_late_does_not_undo_a_newer_one(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """GitHub sends `suspend` while herald is down, then `unsuspend`; days later the owner
    redelivers the failed `suspend` by hand (a new delivery id): the installation stays
    active, as GitHub has it."""
    project_id, auth = await connected_project(api, sessions, INSTALLATION)

    def at(action: str, updated_at: str, suspended_at: str | None) -> dict[str, Any]:
        return installation_payload(
            action,
            installation={
                "id": INSTALLATION,
                "account": {"login": "octo-org", "type": "Organization"},
                "suspended_at": suspended_at,
                "updated_at": updated_at,
            },
        )

    unsuspended = await deliver(api, "installation", at("unsuspend", "2026-03-02T11:00:00Z", None))
    assert unsuspended.json()["data"]["status"] == "active"
    late = await deliver(
        api, "installation", at("suspend", "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z")
    )
    assert late.status_code == 200, late.text
    assert late.json()["data"]["status"] == "active"
    shown = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert shown["githubInstallationStatus"] == "active"

    # A newer suspend still applies.
    newer = await deliver(
        api, "installation", at("suspend", "2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z")
    )
    assert newer.json()["data"]["status"] == "suspended"


async def test_deleted_marks_the_installation_removed_for_projects_now_and_later(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    installation_id = INSTALLATION + 2
    project_id, auth = await connected_project(api, sessions, installation_id)

    deleted = await deliver(
        api, "installation", installation_payload("deleted", installation_id=installation_id)
    )

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["status"] == "removed"
    shown = (await api.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert (shown["githubInstallationId"], shown["githubInstallationStatus"]) == (
        installation_id,
        "removed",
    )
    assert (await installation(sessions, installation_id)).removed_at is not None
    # A later unsuspend cannot bring a removed installation back.
    await deliver(
        api, "installation", installation_payload("unsuspend", installation_id=installation_id)
    )
    assert (await sent_credential(api, sessions, project_id, auth)).installation_status == "removed"

    # A project connected to it afterwards says so at once.
    second, auth2 = await connected_project(api, sessions, installation_id)
    shown = (await api.get(f"/api/projects/{second}", headers=auth2)).json()["data"]
    assert shown["githubInstallationStatus"] == "removed"
    # Cleared, the project reads with the server's token, and no status stays behind.
    cleared = await api.patch(
        f"/api/projects/{second}", headers=auth2, json={"githubInstallationId": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["data"]["githubInstallationStatus"] is None


async def test_app_deliveries_are_checked_against_the_app_secret(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    delivery = str(uuid.uuid4())
    forged = await deliver(
        api, "installation", installation_payload("deleted"), delivery=delivery, secret="guess"
    )
    assert forged.status_code == 401
    assert "HERALD_GITHUB_APP_WEBHOOK_SECRET" in forged.json()["detail"]
    async with sessions() as session:
        assert await session.get(GitHubAppDelivery, delivery) is None

    pinged = await deliver(api, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert pinged.json()["data"] == {"event": "ping"}

    other = await deliver(api, "push", {"ref": "refs/heads/main", "installation": {"id": 9}})
    assert other.status_code == 200, other.text
    assert "only installation and installation_repositories" in other.json()["data"]["ignored"]

    nameless = await deliver(api, "installation", {"action": "created", "installation": {}})
    assert nameless.status_code == 422, nameless.text
    assert nameless.json()["errors"][0]["field"] == "body.installation.id"


async def test_without_an_app_secret_app_deliveries_are_refused(
    database_url: str, fresh_amqp_url: str
) -> None:
    settings = Settings(
        database_url=database_url,
        amqp_url=fresh_amqp_url,
        secret_key=generate_key(),  # type: ignore[arg-type]
    )
    async for client in api_client(settings):
        refused = await deliver(client, "installation", installation_payload("created"))
        assert refused.status_code == 401
        # The same body signed with an empty secret is refused as well.
        empty = await deliver(client, "installation", installation_payload("created"), secret="")
        assert empty.status_code == 401
