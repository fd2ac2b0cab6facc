"""The API refuses to store a URL that aims herald's requests where the operator did not allow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.settings import Settings
from tests.support.api import api_client, new_project, problem, signed_in

GHE = "https://ghe.example.com"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
async def api(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in api_client(api_settings(github_enterprise_origins=[GHE])):
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:18750/api/v3",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:6379/",
        "http://[::1]:15672/api",
        "http://127.0.0.1:5432/",
        "http://ghe.example.com/api/v3",  # the allowed host over another scheme
        "https://ghe.example.com:8443/api/v3",  # or on another port
        "https://ghe.example.com.evil.example/api/v3",
        "https://api.github.com@127.0.0.1/",
    ],
)
async def test_a_github_base_url_off_the_operators_list_answers_422(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], url: str
) -> None:
    headers = await signed_in(sessions)
    body = {"name": "p", "githubRepoOwner": "octo", "githubRepoName": "secret-repo"}

    created = await api.post("/api/projects", headers=headers, json={**body, "githubBaseUrl": url})
    refused = problem(created, 422, "githubBaseUrl")
    assert "must" in refused["errors"][0]["message"]

    project_id = await new_project(api, headers)
    patched = await api.patch(
        f"/api/projects/{project_id}", headers=headers, json={"githubBaseUrl": url}
    )
    problem(patched, 422, "githubBaseUrl")
    stored = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    assert stored["githubBaseUrl"] is None


async def test_an_allowed_enterprise_base_url_is_stored_in_its_plain_form(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await api.post(
        "/api/projects",
        headers=await signed_in(sessions),
        json={
            "name": "p",
            "githubRepoOwner": "corp",
            "githubRepoName": "app",
            "githubBaseUrl": f"{GHE}/api/v3/",
        },
    )

    assert created.status_code == 201, created.text
    assert created.json()["data"]["githubBaseUrl"] == f"{GHE}/api/v3"


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("slackWebhookUrl", SLACK + "\n"),
        ("slackWebhookUrl", SLACK + "?next=http://127.0.0.1/"),
        ("slackWebhookUrl", "http://127.0.0.1:6379/services/T/B/X"),
        ("discordWebhookUrl", "http://169.254.169.254/api/webhooks/1/x"),
    ],
)
async def test_a_webhook_url_off_its_service_answers_422_without_echoing_it(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], field: str, url: str
) -> None:
    response = await api.post(
        "/api/projects",
        headers=await signed_in(sessions),
        json={"name": "p", "notificationSettings": {field: url}},
    )

    problem(response, 422, f"notificationSettings.{field}")
    assert url.strip() not in response.text
