"""The API app in process, its lifespan running (bus, relay, consumers), behind an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.main import create_app
from shared.settings import Settings
from tests.support import factories


async def api_client(
    settings: Settings, *, base_url: str = "http://herald.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of an app built from `settings`; the app stops when the client does."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


async def signed_in(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """The headers of a new user's bearer token."""
    _, token = await factories.user_with_token(sessions)
    return {"Authorization": f"Bearer {token}"}


async def new_project(api: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await api.post(
        "/api/projects",
        headers=headers,
        json={
            "name": "herald",
            "githubRepoOwner": "octo",
            "githubRepoName": "hello",
            "platforms": ["x", "blog"],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def new_job(
    api: httpx.AsyncClient, headers: dict[str, str], project_id: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "projectId": project_id,
        "name": "daily",
        "frequency": "DAILY",
        "timeConfig": {"hour": 9, "minute": 0},
        **fields,
    }
    response = await api.post("/api/cron/schedule", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert a problem+json answer of `status` (naming `field`), and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["success"] is False
    assert body["status"] == status
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    return dict(body)
