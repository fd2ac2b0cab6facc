"""WEBHOOK jobs through the API (on PostgreSQL and SQLite): the receiver checked and stored
encrypted, the secret shown once and renewed, the run's delivery recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from shared.db.schema import CronJob, Execution, ExecutionStep, OutboxMessage
from shared.events import ContentGenerated, DeliveryResult, PostResult, StepStarted
from shared.secrets import decrypt
from shared.settings import Settings
from tests.support.api import api_client, new_job, new_project, problem, signed_in
from tests.support.lifecycle import PUBLIC, scanned

URL = "https://hooks.example.com/receive/T0K3N"


@pytest.fixture
async def hooked(
    api_settings: Callable[..., Settings],
) -> Any:
    """The API and the settings it runs with (its secret key, to read what it stored)."""
    settings = api_settings()
    async for client in api_client(settings):
        yield client, settings


async def stored_job(sessions: async_sessionmaker[AsyncSession], job_id: str) -> CronJob:
    async with sessions() as session:
        job = await session.get(CronJob, job_id)
        assert job is not None
        return job


async def test_a_webhook_job_stores_its_url_and_secret_encrypted_and_shows_the_secret_once(
    hooked: tuple[httpx.AsyncClient, Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    api, settings = hooked
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="WEBHOOK", webhookUrl=URL)

    assert job["type"] == "WEBHOOK"
    assert job["webhookHost"] == "hooks.example.com"
    secret = job["webhookSecret"]
    assert len(secret) >= 40
    assert "T0K3N" not in json.dumps(job)

    key = settings.secret_key.get_secret_value()
    stored = await stored_job(sessions, job["id"])
    assert stored.webhook_url_encrypted and "T0K3N" not in stored.webhook_url_encrypted
    assert decrypt(stored.webhook_url_encrypted, key) == URL
    assert stored.webhook_secret_encrypted and secret not in stored.webhook_secret_encrypted
    assert decrypt(stored.webhook_secret_encrypted, key) == secret

    # Never again: neither the job's page nor the list shows the URL or the secret.
    one = (await api.get(f"/api/cron/schedules/{job['id']}", headers=headers)).json()["data"]
    listed = (await api.get("/api/cron/schedules", headers=headers)).json()["data"]
    for view in (one, *listed):
        assert "webhookSecret" not in view
        assert "T0K3N" not in json.dumps(view) and secret not in json.dumps(view)
    assert one["webhookHost"] == listed[0]["webhookHost"] == "hooks.example.com"


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"type": "WEBHOOK"}, "required for a WEBHOOK job"),
        ({"type": "WEBHOOK", "webhookUrl": ""}, "required for a WEBHOOK job"),
        ({"webhookUrl": URL}, "only a WEBHOOK job delivers to a URL"),
        ({"type": "WEBHOOK", "webhookUrl": "http://hooks.example.com/x"}, "must be an https URL"),
        ({"type": "WEBHOOK", "webhookUrl": "https://10.0.0.7/x"}, "a private address"),
        ({"type": "WEBHOOK", "webhookUrl": "https://127.0.0.1:9/x"}, "a loopback address"),
        ({"type": "WEBHOOK", "webhookUrl": "https://169.254.169.254/x"}, "a link-local address"),
        ({"type": "WEBHOOK", "webhookUrl": "https://localhost/x"}, "a loopback address"),
    ],
)
async def test_a_webhook_url_is_refused_at_save_naming_the_field_and_rule(
    hooked: tuple[httpx.AsyncClient, Settings],
    sessions: async_sessionmaker[AsyncSession],
    fields: dict[str, Any],
    rule: str,
) -> None:
    api, _ = hooked
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    body = {
        "projectId": project_id,
        "name": "hook",
        "frequency": "DAILY",
        "timeConfig": {"hour": 9, "minute": 0},
        **fields,
    }
    response = await api.post("/api/cron/schedule", headers=headers, json=body)
    refused = problem(response, 422, "webhookUrl")
    assert rule in refused["detail"]
    async with sessions() as session:
        kept = await session.scalars(select(CronJob.id).where(CronJob.project_id == project_id))
        assert kept.all() == []


async def test_a_private_address_is_allowed_only_in_a_network_the_operator_allows(
    api_settings: Callable[..., Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = api_settings(webhook_allow_http=True, outbound_allow_networks=["10.0.0.0/8"])
    async for api in api_client(settings):
        headers = await signed_in(sessions)
        project_id = await new_project(api, headers)
        job = await new_job(
            api, headers, project_id, type="WEBHOOK", webhookUrl="http://10.1.2.3:8080/hook"
        )
        assert job["webhookHost"] == "10.1.2.3:8080"
        body = {
            "projectId": project_id,
            "name": "hook",
            "type": "WEBHOOK",
            "webhookUrl": "http://192.168.0.9/hook",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        }
        response = await api.post("/api/cron/schedule", headers=headers, json=body)
        assert "a private address" in problem(response, 422, "webhookUrl")["detail"]


async def test_an_update_replaces_the_url_and_keeps_the_secret(
    hooked: tuple[httpx.AsyncClient, Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    api, settings = hooked
    key = settings.secret_key.get_secret_value()
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="WEBHOOK", webhookUrl=URL)
    plain = await new_job(api, headers, project_id)

    moved = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={"jobId": job["id"], "webhookUrl": "https://other.example.org:8443/in"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["webhookHost"] == "other.example.org:8443"
    assert "webhookSecret" not in moved.json()["data"]
    stored = await stored_job(sessions, job["id"])
    assert stored.webhook_url_encrypted is not None and stored.webhook_secret_encrypted
    assert decrypt(stored.webhook_url_encrypted, key) == "https://other.example.org:8443/in"
    assert decrypt(stored.webhook_secret_encrypted, key) == job["webhookSecret"]

    for body, rule in (
        ({"jobId": job["id"], "webhookUrl": "https://10.9.9.9/in"}, "a private address"),
        ({"jobId": job["id"], "webhookUrl": ""}, "required for a WEBHOOK job"),
        ({"jobId": plain["id"], "webhookUrl": URL}, "only a WEBHOOK job delivers to a URL"),
    ):
        response = await api.patch("/api/cron/schedule", headers=headers, json=body)
        assert rule in problem(response, 422, "webhookUrl")["detail"]
    unchanged = await stored_job(sessions, job["id"])
    assert unchanged.webhook_url_encrypted == stored.webhook_url_encrypted


async def test_renewing_the_secret_shows_the_new_one_once(
    hooked: tuple[httpx.AsyncClient, Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    api, settings = hooked
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="WEBHOOK", webhookUrl=URL)
    plain = await new_job(api, headers, project_id)

    renewed = await api.post(f"/api/cron/schedules/{job['id']}/webhook-secret", headers=headers)
    assert renewed.status_code == 201, renewed.text
    data = renewed.json()["data"]
    assert data["secret"] != job["webhookSecret"]
    assert data["signatureHeader"] == "X-Herald-Signature-256"
    stored = await stored_job(sessions, job["id"])
    assert stored.webhook_secret_encrypted is not None
    assert (
        decrypt(stored.webhook_secret_encrypted, settings.secret_key.get_secret_value())
        == (data["secret"])
    )

    other = await api.post(f"/api/cron/schedules/{plain['id']}/webhook-secret", headers=headers)
    assert "only a WEBHOOK job" in problem(other, 409)["detail"]
    stranger = await signed_in(sessions)
    foreign = await api.post(f"/api/cron/schedules/{job['id']}/webhook-secret", headers=stranger)
    problem(foreign, 404)


async def test_a_run_carries_the_receiver_encrypted_on_job_due(
    hooked: tuple[httpx.AsyncClient, Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    api, settings = hooked
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="WEBHOOK", webhookUrl=URL)
    triggered = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    assert triggered.status_code == 202, triggered.text
    execution_id = triggered.json()["data"]["id"]

    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.routing_key == "job.due",
                    OutboxMessage.payload.contains(execution_id),
                )
            )
        ).all()
    [row] = rows
    assert "T0K3N" not in row.payload and job["webhookSecret"] not in row.payload
    due = json.loads(row.payload)
    assert due["jobType"] == "WEBHOOK"
    key = settings.secret_key.get_secret_value()
    assert decrypt(due["webhook"]["url"], key) == URL
    assert decrypt(due["webhook"]["secret"], key) == job["webhookSecret"]
    assert due["webhook"]["jobName"] == "daily"


def delivered(
    envelope: dict[str, str], outcome: str, status: int, attempts: int
) -> ContentGenerated:
    return ContentGenerated(
        **envelope,
        results=[PostResult(platform="x", status="GENERATED", body="hello", characters=5)],
        delivery=DeliveryResult(
            delivery_id="d-1",
            outcome=outcome,  # type: ignore[arg-type]
            host="hooks.example.com",
            attempts=attempts,
            status_code=status,
            error=None if outcome == "DELIVERED" else f"the receiver answered {status}",
        ),
    )


@pytest.mark.parametrize(
    ("outcome", "status", "attempts", "ended"),
    [("DELIVERED", 200, 2, "COMPLETED"), ("FAILED", 410, 1, "FAILED")],
)
async def test_the_delivery_is_recorded_on_the_execution(
    hooked: tuple[httpx.AsyncClient, Settings],
    sessions: async_sessionmaker[AsyncSession],
    outcome: str,
    status: int,
    attempts: int,
    ended: str,
) -> None:
    api, _ = hooked
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="WEBHOOK", webhookUrl=URL)
    triggered = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    execution_id = triggered.json()["data"]["id"]
    envelope = {"execution_id": execution_id, "job_id": job["id"], "project_id": project_id}

    for event in (
        StepStarted(**envelope, step="scan"),
        scanned(envelope, commits=2),
        delivered(envelope, outcome, status, attempts),
    ):
        await apply_event(sessions, event, public_url=PUBLIC)

    view = (await api.get(f"/api/cron/executions/{execution_id}", headers=headers)).json()
    execution = view["data"]
    assert execution["status"] == ended
    assert execution["metadata"]["delivery"] == {
        "deliveryId": "d-1",
        "outcome": outcome,
        "host": "hooks.example.com",
        "attempts": attempts,
        "statusCode": status,
        "error": None if outcome == "DELIVERED" else f"the receiver answered {status}",
    }
    async with sessions() as session:
        stored = await session.get(Execution, execution_id)
        steps = (
            await session.scalars(
                select(ExecutionStep).where(
                    ExecutionStep.execution_id == execution_id, ExecutionStep.step == "deliver"
                )
            )
        ).all()
    assert stored is not None
    [step] = steps
    assert step.kind == ("completed" if outcome == "DELIVERED" else "failed")
    assert f"answered {status}" in (step.detail or "")
    if ended == "FAILED":
        assert stored.error_message is not None
        assert "webhook delivery to hooks.example.com failed" in stored.error_message
        assert "410" in stored.error_message
