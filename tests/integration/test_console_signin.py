"""Signing in to the console returns a person to the page a link sent them to, on this site only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared.settings import Settings
from tests.support.api import api_client
from tests.support.factories import token_on

PUBLIC = "http://herald.test"


@pytest.fixture
async def console(
    database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url, amqp_url=fresh_amqp_url, local_repos_root=str(tmp_path)
    )
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


async def sign_in(console: httpx.AsyncClient, token: str, after: str) -> httpx.Response:
    return await console.post(
        "/console/signin", data={"token": token, "next": after}, headers={"Origin": PUBLIC}
    )


async def test_a_link_opened_signed_out_leads_back_to_its_page_after_sign_in(
    console: httpx.AsyncClient, database_url: str
) -> None:
    token = await token_on(database_url)
    link = "/console/executions/exe_0000000000000000000000000?tab=posts"

    signed_out = await console.get(link)
    assert signed_out.status_code == 303
    target = urlsplit(signed_out.headers["location"])
    assert target.path == "/console/signin"
    assert parse_qs(target.query)["next"] == [link]

    form = await console.get(signed_out.headers["location"])
    assert f'name="next" value="{link.replace("&", "&amp;")}"' in form.text

    wrong = await sign_in(console, "not-a-token", link)
    assert wrong.status_code == 401
    assert 'name="next" value="/console/executions/' in wrong.text

    signed_in = await sign_in(console, token, link)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == link


@pytest.mark.parametrize(
    "after",
    [
        "https://elsewhere.test/console/jobs",
        "//elsewhere.test/console/jobs",
        "/api/cron/schedules",
        "/console/signin?next=/console/jobs",
        "/console/jobs\r\nSet-Cookie: x=y",
        "/console/\\\\elsewhere.test",
        "",
    ],
)
async def test_sign_in_never_sends_anyone_off_the_console(
    console: httpx.AsyncClient, database_url: str, after: str
) -> None:
    token = await token_on(database_url)
    response = await sign_in(console, token, after)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/jobs"
