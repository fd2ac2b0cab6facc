"""The console's project form: a GitHub App installation or a token, the token never shown."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.secrets import generate_key
from shared.settings import Settings
from tests.support.api import api_client
from tests.support.factories import token_on

PUBLIC = "http://herald.test"
TOKEN = "github_pat_11AAAAAAA0console0secret"


@pytest.fixture
async def console(
    database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        amqp_url=fresh_amqp_url,
        local_repos_root=str(tmp_path),
        secret_key=generate_key(),
        github_app_id="12345",
    )
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


async def test_a_project_is_created_with_a_token_the_console_never_shows_again(
    console: httpx.AsyncClient, database_url: str
) -> None:
    token = await token_on(database_url)
    signed_in = await console.post(
        "/console/signin",
        data={"token": token, "next": "/console/jobs"},
        headers={"Origin": PUBLIC},
    )
    assert signed_in.status_code == 303
    form = await console.get("/console/projects/new")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match is not None
    fields = {
        "csrf": match.group(1),
        "name": "site",
        "githubRepoOwner": "octo",
        "githubRepoName": "site",
        "githubToken": TOKEN,
        "platforms": "x",
    }

    refused = await console.post(
        "/console/projects/new",
        data={**fields, "githubInstallationId": "abc"},
        headers={"Origin": PUBLIC},
    )
    assert refused.status_code == 422
    assert "valid integer" in refused.text
    assert TOKEN not in refused.text  # the form comes back without the token
    created = await console.post("/console/projects/new", data=fields, headers={"Origin": PUBLIC})
    assert created.status_code == 303, created.text
    jobs = await console.get("/console/jobs")

    assert "GitHub octo/site" in jobs.text
    assert "read with the project&#39;s own token" in jobs.text
    assert TOKEN not in jobs.text
