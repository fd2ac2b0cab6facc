"""The console's WEBHOOK jobs: the URL asked for and never shown, the secret shown once (on
creating and on renewing), the run's delivery on its page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from shared.db.schema import CronJob
from shared.events import ContentGenerated, DeliveryResult, PostResult, StepStarted
from shared.secrets import decrypt, generate_key
from shared.settings import Settings
from tests.support.api import api_client
from tests.support.factories import token_on
from tests.support.lifecycle import scanned

PUBLIC = "http://herald.test"
URL = "https://hooks.example.com/in/console0T0K3N"
KEY = generate_key()


@pytest.fixture
async def console(
    database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        amqp_url=fresh_amqp_url,
        local_repos_root=str(tmp_path),
        secret_key=KEY,
    )
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


def secret_on(page: httpx.Response) -> str:
    match = re.search(r'<code id="secret-value">([^<]+)</code>', page.text)
    assert match is not None, page.text
    return match.group(1)


async def test_a_webhook_job_made_in_the_console_shows_its_secret_once_and_its_delivery(
    console: httpx.AsyncClient, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await token_on(database_url)
    signed_in = await console.post(
        "/console/signin",
        data={"token": token, "next": "/console/jobs"},
        headers={"Origin": PUBLIC},
    )
    assert signed_in.status_code == 303
    api_headers = {"Authorization": f"Bearer {token}"}
    project = await console.post(
        "/api/projects",
        headers=api_headers,
        json={"name": "site", "githubRepoOwner": "octo", "githubRepoName": "site"},
    )
    project_id = project.json()["data"]["id"]
    form = await console.get("/console/jobs/new")
    assert 'name="webhookUrl"' in form.text and 'value="WEBHOOK"' in form.text
    fields = {
        "csrf": csrf_of(form),
        "projectId": project_id,
        "name": "hooked",
        "type": "WEBHOOK",
        "frequency": "DAILY",
        "timeConfig.hour": "9",
        "timeConfig.minute": "0",
        "timeConfig.timezone": "UTC",
        "isEnabled": "on",
    }

    missing = await console.post("/console/jobs/new", data=fields, headers={"Origin": PUBLIC})
    assert missing.status_code == 422
    assert "required for a WEBHOOK job" in missing.text
    private = await console.post(
        "/console/jobs/new",
        data={**fields, "webhookUrl": "https://10.0.0.8/in/console0T0K3N"},
        headers={"Origin": PUBLIC},
    )
    assert private.status_code == 422
    assert "a private address" in private.text
    assert "console0T0K3N" not in private.text  # write-only: not written back

    created = await console.post(
        "/console/jobs/new", data={**fields, "webhookUrl": URL}, headers={"Origin": PUBLIC}
    )
    assert created.status_code == 200, created.text
    secret = secret_on(created)
    assert "cannot show it again" in created.text
    assert "console0T0K3N" not in created.text
    [job] = (await console.get("/api/cron/schedules", headers=api_headers)).json()["data"]
    async with sessions() as session:
        stored = await session.get(CronJob, job["id"])
        assert stored is not None and stored.webhook_secret_encrypted is not None
        assert decrypt(stored.webhook_secret_encrypted, KEY) == secret

    page = await console.get(f"/console/jobs/{job['id']}")
    assert "hooks.example.com" in page.text
    assert secret not in page.text and "console0T0K3N" not in page.text
    edit = await console.get(f"/console/jobs/{job['id']}/edit")
    assert "console0T0K3N" not in edit.text and "Leave empty to keep" in edit.text

    renewed = await console.post(
        f"/console/jobs/{job['id']}/webhook-secret",
        data={"csrf": csrf_of(page)},
        headers={"Origin": PUBLIC},
    )
    assert renewed.status_code == 200, renewed.text
    assert secret_on(renewed) != secret
    assert "Signing secret renewed" in renewed.text

    triggered = await console.post(
        "/api/cron/trigger", headers=api_headers, json={"jobId": job["id"]}
    )
    execution_id = triggered.json()["data"]["id"]
    envelope = {"execution_id": execution_id, "job_id": job["id"], "project_id": project_id}
    delivery = DeliveryResult(
        delivery_id="d-console",
        outcome="FAILED",
        host="hooks.example.com",
        attempts=1,
        status_code=410,
        error="the receiver answered 410",
    )
    for event in (
        StepStarted(**envelope, step="scan"),
        scanned(envelope, commits=1),
        ContentGenerated(
            **envelope,
            results=[PostResult(platform="x", status="GENERATED", body="hi", characters=2)],
            delivery=delivery,
        ),
    ):
        await apply_event(sessions, event, public_url=PUBLIC)
    run = await console.get(f"/console/executions/{execution_id}")
    assert run.status_code == 200
    section = run.text[run.text.index('id="delivery"') :]
    assert "Webhook delivery" in run.text
    assert "<strong>410</strong>" in section and "d-console" in section
    assert "webhook delivery to hooks.example.com failed" in run.text
