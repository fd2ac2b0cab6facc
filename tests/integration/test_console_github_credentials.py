"""The console's project form: a GitHub App installation or a token, the token never shown."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.secrets import generate_key
from shared.settings import Settings
from shared.signatures import signature_of
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
        public_url=PUBLIC,
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


async def signed_in_console(console: httpx.AsyncClient, database_url: str) -> str:
    """Sign in a new user; the bearer token behind the console's session."""
    token = await token_on(database_url)
    signed_in = await console.post(
        "/console/signin",
        data={"token": token, "next": "/console/jobs"},
        headers={"Origin": PUBLIC},
    )
    assert signed_in.status_code == 303
    return token


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def test_the_project_page_sets_the_credential_and_makes_the_webhook_secret_once(
    console: httpx.AsyncClient, database_url: str
) -> None:
    token = await signed_in_console(console, database_url)
    auth = {"Authorization": f"Bearer {token}"}
    made = await console.post(
        "/api/projects",
        headers=auth,
        json={"name": "site", "githubRepoOwner": "octo", "githubRepoName": "site"},
    )
    project_id = made.json()["data"]["id"]
    page = await console.get(f"/console/projects/{project_id}")
    assert page.status_code == 200, page.text
    assert "the server&#39;s token" in page.text
    url = f"{PUBLIC}/api/webhooks/github?project={project_id}"
    assert f'<code class="long" id="webhook-url">{url}</code>' in page.text
    assert "No secret yet" in page.text and "None received yet." in page.text
    csrf = csrf_of(page.text)

    # Its own token: stored, never shown; the page says what it reads with.
    saved = await console.post(
        f"/console/projects/{project_id}/github-credential",
        data={"csrf": csrf, "credential": "token", "githubToken": TOKEN},
        headers={"Origin": PUBLIC},
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].endswith("notice=credential-saved")
    shown = (await console.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert (shown["githubTokenSet"], shown["githubInstallationId"]) == (True, None)
    page = await console.get(f"/console/projects/{project_id}?notice=credential-saved")
    assert "GitHub credential saved." in page.text and TOKEN not in page.text
    assert "A token is stored; leave this empty to keep it" in page.text

    # An installation not granted to the account: the API's refusal, beside the field.
    refused = await console.post(
        f"/console/projects/{project_id}/github-credential",
        data={"csrf": csrf, "credential": "installation", "githubInstallationId": "77001"},
        headers={"Origin": PUBLIC},
    )
    assert refused.status_code == 422
    assert "installation 77001 is not granted to this account" in refused.text
    empty = await console.post(
        f"/console/projects/{project_id}/github-credential",
        data={"csrf": csrf, "credential": "installation", "githubInstallationId": ""},
        headers={"Origin": PUBLIC},
    )
    assert empty.status_code == 422
    assert "required to read through herald&#39;s GitHub App" in empty.text

    # Back to the server's token: the project's own is forgotten.
    back = await console.post(
        f"/console/projects/{project_id}/github-credential",
        data={"csrf": csrf, "credential": "global"},
        headers={"Origin": PUBLIC},
    )
    assert back.status_code == 303, back.text
    shown = (await console.get(f"/api/projects/{project_id}", headers=auth)).json()["data"]
    assert shown["githubTokenSet"] is False

    # A form from elsewhere changes nothing.
    forged = await console.post(
        f"/console/projects/{project_id}/webhook-secret",
        data={"csrf": "forged"},
        headers={"Origin": PUBLIC},
    )
    assert forged.status_code == 403
    # The secret: on the answer to the post, once, never cached, never again.
    secret_page = await console.post(
        f"/console/projects/{project_id}/webhook-secret",
        data={"csrf": csrf},
        headers={"Origin": PUBLIC},
    )
    assert secret_page.status_code == 200, secret_page.text
    assert secret_page.headers["cache-control"] == "no-store"
    match = re.search(r'<code class="long" id="webhook-secret">([^<]+)</code>', secret_page.text)
    assert match is not None
    secret = match.group(1)
    again = await console.get(f"/console/projects/{project_id}")
    assert secret not in again.text and "A secret is set." in again.text

    # A delivery signed with it shows up among the recent ones, with its outcome.
    body = b'{"ref": "refs/heads/main", "commits": []}'
    delivered = await console.post(
        "/api/webhooks/github",
        params={"project": project_id},
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "X-Hub-Signature-256": signature_of(secret, body),
        },
    )
    assert delivered.status_code == 200, delivered.text
    listed = await console.get(f"/console/projects/{project_id}")
    assert 'data-delivery-id="0b989ba4-242f-11e5-81e1-c7b6966d2516"' in listed.text
    assert "no enabled job has a webhook trigger this push delivery matches" in listed.text


async def test_a_job_with_github_triggers_shows_where_github_delivers(
    console: httpx.AsyncClient, database_url: str
) -> None:
    token = await signed_in_console(console, database_url)
    auth = {"Authorization": f"Bearer {token}"}
    made = await console.post(
        "/api/projects",
        headers=auth,
        json={"name": "site", "githubRepoOwner": "octo", "githubRepoName": "site"},
    )
    project_id = made.json()["data"]["id"]
    job = await console.post(
        "/api/cron/schedule",
        headers=auth,
        json={
            "projectId": project_id,
            "name": "on release",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
            "webhookTriggers": [{"event": "release"}],
        },
    )
    assert job.status_code == 201, job.text

    page = await console.get(f"/console/jobs/{job.json()['data']['id']}")

    assert page.status_code == 200, page.text
    url = f"{PUBLIC}/api/webhooks/github?project={project_id}"
    assert f'<code class="long" id="webhook-url">{url}</code>' in page.text
    assert "No secret yet:" in page.text
