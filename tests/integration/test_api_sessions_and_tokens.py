"""Console sessions held server-side, the tokens API, and the security headers on every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.console.credentials import COOKIE
from services.api.headers import CONSOLE_POLICY
from shared.db.schema import ConsoleSession
from shared.settings import Settings
from shared.tokens import hash_token
from tests.support.api import api_client, new_job, new_project, problem, signed_in

PUBLIC = "http://herald.test"


@pytest.fixture
async def site(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in api_client(api_settings(), base_url=PUBLIC):
        yield client


async def sign_in(site: httpx.AsyncClient, token: str) -> str:
    """Sign in through the console's form; return the session secret its cookie holds."""
    answer = await site.post("/console/signin", data={"token": token}, headers={"Origin": PUBLIC})
    assert answer.status_code == 303, answer.text
    secret = answer.cookies[COOKIE]
    assert secret.startswith("hrls_")
    site.cookies.clear()  # each request below says which cookie it sends
    return secret


def cookie(secret: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={secret}"}


async def page_as(site: httpx.AsyncClient, secret: str, path: str = "/console/jobs") -> int:
    return (await site.get(path, headers=cookie(secret))).status_code


async def test_the_console_cookie_holds_a_session_not_the_token_and_sign_out_ends_it(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    token = headers["Authorization"].removeprefix("Bearer ")

    secret = await sign_in(site, token)
    assert token not in secret
    assert await page_as(site, secret) == 200
    assert (await site.get("/api/me", headers={"Authorization": f"Bearer {secret}"})).is_success

    form = await site.get("/console/jobs", headers=cookie(secret))
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    out = await site.post(
        "/console/signout",
        data={"csrf": csrf},
        headers={**cookie(secret), "Origin": PUBLIC},
    )
    assert out.status_code == 303

    # The old cookie, replayed: the console sends it to sign in, the API refuses it.
    assert await page_as(site, secret) == 303
    problem(await site.get("/api/me", headers={"Authorization": f"Bearer {secret}"}), 401)
    # The token itself still works: signing out ended the session, not the token.
    assert (await site.get("/api/me", headers=headers)).is_success


async def test_each_sign_in_rotates_the_session_and_ends_the_one_it_replaces(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = (await signed_in(sessions))["Authorization"].removeprefix("Bearer ")
    first = await sign_in(site, token)

    again = await site.post(
        "/console/signin",
        data={"token": token},
        headers={**cookie(first), "Origin": PUBLIC},
    )
    second = again.cookies[COOKIE]
    site.cookies.clear()

    assert second != first
    assert await page_as(site, second) == 200
    assert await page_as(site, first) == 303


async def test_a_session_expires_and_dies_with_its_token(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    token = headers["Authorization"].removeprefix("Bearer ")
    expiring, revoked = await sign_in(site, token), await sign_in(site, token)

    async with sessions() as session, session.begin():
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.secret_hash == hash_token(expiring))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await page_as(site, expiring) == 303
    assert await page_as(site, revoked) == 200

    listed = (await site.get("/api/tokens", headers=headers)).json()["data"]
    (await site.delete(f"/api/tokens/{listed[0]['id']}", headers=headers)).raise_for_status()
    assert await page_as(site, revoked) == 303
    problem(await site.get("/api/me", headers=headers), 401)


async def test_a_user_lists_creates_and_revokes_only_their_own_tokens(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    alice, bob = await signed_in(sessions), await signed_in(sessions)

    created = await site.post("/api/tokens", headers=alice, json={"name": "ci"})
    assert created.status_code == 201, created.text
    new = created.json()["data"]
    assert new["token"].startswith("hrld_") and new["token"].startswith(new["prefix"])
    listed = (await site.get("/api/tokens", headers=alice)).json()
    assert listed["count"] == 2
    assert all("token" not in row and "tokenHash" not in row for row in listed["data"])
    assert new["token"] not in str(listed)
    assert (
        await site.get("/api/me", headers={"Authorization": f"Bearer {new['token']}"})
    ).is_success

    # Bob sees none of Alice's tokens and cannot revoke one.
    assert {row["id"] for row in (await site.get("/api/tokens", headers=bob)).json()["data"]} & {
        new["id"]
    } == set()
    problem(await site.delete(f"/api/tokens/{new['id']}", headers=bob), 404)

    revoked = await site.delete(f"/api/tokens/{new['id']}", headers=alice)
    assert revoked.json()["data"]["revokedAt"] is not None
    problem(await site.get("/api/me", headers={"Authorization": f"Bearer {new['token']}"}), 401)
    assert (await site.get("/api/me", headers=alice)).is_success
    problem(await site.post("/api/tokens", headers=alice, json={"name": "x" * 201}), 422, "name")


async def test_every_answer_carries_the_security_headers(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    secret = await sign_in(site, headers["Authorization"].removeprefix("Bearer "))

    for path, sent in (
        ("/console/jobs", cookie(secret)),
        ("/console/signin", {}),
        ("/console/executions/exec_0", cookie(secret)),  # a 404 page
    ):
        answer = await site.get(path, headers=sent)
        assert answer.headers["content-security-policy"] == CONSOLE_POLICY, path
        assert (
            "frame-ancestors 'none'" in CONSOLE_POLICY and "'unsafe-inline'" not in CONSOLE_POLICY
        )
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store"
    for answer in (
        await site.get("/api/cron/schedules", headers=headers),
        await site.get("/api/cron/schedules"),  # a 401 problem
    ):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
    static = await site.get("/console/static/console.js")
    assert static.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in static.headers.get("cache-control", "")


@pytest.mark.parametrize(
    "cursor",
    [
        "MjAyMC0wMS0wMVQwMDowMDowMHxjcm9uX3g=",  # a naive instant
        "OTk5OS0xMi0zMVQyMzo1OTo1OS0xNDowMHx4",  # past year 9999 in UTC
        "not a cursor",
    ],
)
async def test_the_console_job_page_answers_a_forged_cursor_with_422(
    site: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], cursor: str
) -> None:
    headers = await signed_in(sessions)
    secret = await sign_in(site, headers["Authorization"].removeprefix("Bearer "))
    job = await new_job(site, headers, await new_project(site, headers))

    page = await site.get(
        f"/console/jobs/{job['id']}", params={"cursor": cursor}, headers=cookie(secret)
    )
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "not a cursor this API issued" in page.text
    polled = await site.get(
        f"/console/jobs/{job['id']}",
        params={"cursor": cursor},
        headers={**cookie(secret), "Accept": "application/json"},
    )
    assert polled.status_code == 422
