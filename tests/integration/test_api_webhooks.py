"""Webhook URLs are write-only secrets: validated, stored encrypted, never returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import Project
from shared.secrets import decrypt, generate_key
from shared.settings import Settings
from tests.support.api import api_client, signed_in

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
DISCORD = "https://discord.com/api/webhooks/123/SECRETTOKEN"
KEY = generate_key()


@pytest.fixture
async def api(database_url: str, fresh_amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, amqp_url=fresh_amqp_url, secret_key=KEY)
    async for client in api_client(settings):
        yield client


async def stored(sessions: async_sessionmaker[AsyncSession], project_id: str) -> dict[str, Any]:
    async with sessions() as session:
        project = await session.get(Project, project_id)
    assert project is not None
    return dict(project.notification_settings)


async def test_webhook_urls_are_stored_encrypted_kept_and_removed(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auth = await signed_in(sessions)
    created = await api.post(
        "/api/projects",
        headers=auth,
        json={
            "name": "p",
            "githubRepoOwner": "o",
            "githubRepoName": "r",
            "notificationSettings": {"slackWebhookUrl": SLACK, "discordWebhookUrl": DISCORD},
        },
    )
    assert created.status_code == 201, created.text
    assert SLACK not in created.text and DISCORD not in created.text
    shown = created.json()["data"]["notificationSettings"]
    assert shown["slackWebhookUrlSet"] is True
    assert shown["discordWebhookUrlSet"] is True
    project_id = created.json()["data"]["id"]
    raw = await stored(sessions, project_id)
    assert SLACK not in str(raw)
    assert decrypt(raw["slackWebhookUrl"], KEY) == SLACK

    # Left out: kept. Empty string: removed.
    put = await api.put(
        f"/api/projects/{project_id}/notification-settings",
        headers=auth,
        json={"recipients": ["ops@example.com"], "discordWebhookUrl": ""},
    )
    assert put.status_code == 200, put.text
    assert put.json()["data"]["slackWebhookUrlSet"] is True
    assert put.json()["data"]["discordWebhookUrlSet"] is False
    raw = await stored(sessions, project_id)
    assert decrypt(raw["slackWebhookUrl"], KEY) == SLACK
    assert "discordWebhookUrl" not in raw
    got = await api.get(f"/api/projects/{project_id}", headers=auth)
    assert SLACK not in got.text


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("slackWebhookUrl", "http://hooks.slack.com/services/T/B/X"),
        ("slackWebhookUrl", "https://evil.example/services/T/B/X"),
        ("discordWebhookUrl", "https://discord.com.evil.example/api/webhooks/1/x"),
    ],
)
async def test_a_webhook_url_of_another_host_is_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], field: str, url: str
) -> None:
    response = await api.post(
        "/api/projects",
        headers=await signed_in(sessions),
        json={
            "name": "p",
            "notificationSettings": {field: url},
        },
    )
    assert response.status_code == 422
    assert f"notificationSettings.{field}" in [e["field"] for e in response.json()["errors"]]


async def test_without_a_secret_key_a_webhook_url_is_a_clear_422(
    database_url: str, fresh_amqp_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = Settings(database_url=database_url, amqp_url=fresh_amqp_url, secret_key="")
    async for api in api_client(settings):
        response = await api.post(
            "/api/projects",
            headers=await signed_in(sessions),
            json={
                "name": "p",
                "notificationSettings": {"slackWebhookUrl": SLACK},
            },
        )
        assert response.status_code == 422
        body = response.json()
        assert body["errors"][0]["field"] == "notificationSettings.slackWebhookUrl"
        assert "HERALD_SECRET_KEY" in body["detail"]
        assert SLACK not in response.text
