"""Deny by default, over the app's own route table (not its OpenAPI document): every operation
but the listed public ones refuses a request without a credential, with a malformed one and
with a revoked one, before it reads its parameters or body."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.access import public_paths
from services.api.console.credentials import COOKIE
from services.api.main import create_app
from shared.db.schema import ApiToken
from shared.settings import Settings
from shared.tokens import hash_token
from tests.support import factories
from tests.support.api import api_client

# Changing this list is a decision about who may reach what: it belongs in a review.
PUBLIC = {
    "/",
    "/favicon.ico",
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/docs/static",
    "/redoc",
    # Authenticated by each delivery's signature (tests/integration/test_api_github_webhooks.py).
    "/api/webhooks/github",
    "/console",
    "/console/signin",
    "/console/recipients/confirm",
    "/console/static",
}

MALFORMED = [
    "",  # no header at all
    "Bearer",
    "Bearer    ",
    "Basic aGVyYWxkOmhlcmFsZA==",
    "bearer hrld_" + "A" * 43,  # well formed, never issued
    "Bearer hrs_" + "B" * 43,  # a console session that never was
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # an unsigned JWT, no JWKS configured
    "Bearer " + "x" * 5000,
]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str

    @property
    def url(self) -> str:
        # Any value will do for a path parameter: the credential is refused before it is read.
        return re.sub(r"\{[^}]+\}", "nothing_1", self.path)


def operations() -> list[Operation]:
    app = create_app(Settings())
    found = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute) or context.path in PUBLIC:
            continue
        for method in sorted(context.original_route.methods - {"HEAD"}):
            found.append(Operation(method, str(context.path)))
    return found


OPERATIONS = operations()
API = [op for op in OPERATIONS if op.path.startswith("/api/")]
CONSOLE = [op for op in OPERATIONS if op.path.startswith("/console")]


def test_the_public_routes_are_exactly_the_listed_ones_and_every_other_is_guarded() -> None:
    assert public_paths(create_app(Settings())) == PUBLIC
    # Nothing escapes the two kinds below: a route outside /api and /console is public or
    # refused like an API route.
    assert len(API) + len(CONSOLE) == len(OPERATIONS)
    assert len(API) >= 30 and len(CONSOLE) >= 20


@pytest.fixture
async def api(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    # Hundreds of refusals from one address: the failed-authentication limit is off here
    # (tests/integration/test_api_limits.py covers it).
    async for client in api_client(api_settings(auth_failures_per_minute=0)):
        yield client


async def revoked_token(sessions: async_sessionmaker[AsyncSession]) -> str:
    _, token = await factories.user_with_token(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(token))
            .values(revoked_at=datetime.now(UTC))
        )
    return token


def assert_refused(response: httpx.Response, operation: Operation, credential: str) -> None:
    context = f"{operation.method} {operation.path} with {credential[:30]!r}"
    assert response.status_code == 401, f"{context}: {response.status_code} {response.text}"
    assert response.headers["www-authenticate"] == 'Bearer realm="herald"', context
    assert response.headers["content-type"].startswith("application/problem+json"), context


async def test_every_api_operation_refuses_a_missing_malformed_or_revoked_credential(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    credentials = [*MALFORMED, f"Bearer {await revoked_token(sessions)}"]
    for operation in API:
        for credential in credentials:
            headers = {"Authorization": credential} if credential else {}
            # A body that would fail validation: the refusal must come first.
            body = {"unexpected": True} if operation.method in {"POST", "PUT", "PATCH"} else None
            response = await api.request(
                operation.method, operation.url, headers=headers, json=body
            )
            assert_refused(response, operation, credential)


async def test_the_same_requests_with_a_live_token_are_not_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The positive control: the requests above fail for their credential, not their shape.
    _, token = await factories.user_with_token(sessions)
    for operation in API:
        body = {"unexpected": True} if operation.method in {"POST", "PUT", "PATCH"} else None
        response = await api.request(
            operation.method,
            operation.url,
            headers={"Authorization": f"Bearer {token}"},
            json=body,
        )
        assert response.status_code != 401, f"{operation}: {response.text}"


async def test_a_token_revoked_between_two_hot_reads_is_refused_at_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The hot reads check the token inside their statements: an empty page and a page with
    # rows are both refused once the token is revoked.
    user_id, token = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id)
    job = await factories.job(sessions, project, next_run_at=None)
    headers = {"Authorization": f"Bearer {token}"}
    reads = [
        "/api/cron/schedules",
        "/api/cron/executions",
        "/api/cron/executions?stats=true",
        f"/api/cron/executions?jobId={job.id}",
        f"/api/cron/executions?jobId={job.id}&stats=true",
        f"/api/cron/schedules/{job.id}/statistics",
        "/api/cron/executions?jobId=someone_elses",
    ]
    for url in reads:
        expected = 404 if url.endswith("someone_elses") else 200
        assert (await api.get(url, headers=headers)).status_code == expected, url
    async with sessions() as session, session.begin():
        await session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(token))
            .values(revoked_at=datetime.now(UTC))
        )
    # Parameters the reads refuse before their statements run: the token is refused first.
    refused_parameters = [
        "/api/cron/schedules?cursor=zzz",
        "/api/cron/schedules?limit=0",
        "/api/cron/executions?limit=100000",
        "/api/cron/executions?cursor=bm90IGEgY3Vyc29y",
        f"/api/cron/schedules/{'x' * 100}/statistics",
    ]
    for url in [*reads, *refused_parameters]:
        response = await api.get(url, headers=headers)
        assert response.status_code == 401, f"{url}: {response.text}"
    # The positive control: with a live token the same parameters are the client's fault.
    _, live = await factories.user_with_token(sessions)
    for url in refused_parameters:
        response = await api.get(url, headers={"Authorization": f"Bearer {live}"})
        assert response.status_code == 422, f"{url}: {response.text}"


async def test_every_console_page_sends_a_browser_without_a_session_to_sign_in(
    api: httpx.AsyncClient,
) -> None:
    for operation in CONSOLE:
        response = await api.request(operation.method, operation.url)
        assert response.status_code == 303, f"{operation}: {response.status_code}"
        assert response.headers["location"].startswith("/console/signin"), operation


async def test_a_console_page_with_a_forged_session_cookie_is_sent_to_sign_in(
    api: httpx.AsyncClient,
) -> None:
    # The cookie is there, so the page runs: the API call it makes refuses the session.
    api.cookies.set(COOKIE, "hrs_" + "C" * 43, path="/console")
    for path in ("/console/jobs", "/console/notifications", "/console/projects/new"):
        response = await api.get(path)
        assert response.status_code == 303, f"{path}: {response.status_code}"
        assert response.headers["location"].startswith("/console/signin"), path


async def test_the_root_sends_a_browser_to_the_console_and_tells_an_api_client_what_is_here(
    api: httpx.AsyncClient,
) -> None:
    browser = await api.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert (browser.status_code, browser.headers["location"]) == (303, "/console")
    index = await api.get("/", headers={"Accept": "application/json"})
    assert index.status_code == 200
    assert index.json()["api"] == "/api" and index.json()["docs"] == "/docs"
    icon = await api.get("/favicon.ico")
    assert icon.headers["location"] == "/console/static/favicon.svg"
    svg = await api.get(icon.headers["location"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
