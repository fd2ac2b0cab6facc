"""WEBHOOK jobs end to end: api, scanner and generator as real processes on RabbitMQ and
PostgreSQL, a local GitHub server and a local receiver that checks every signature.

A receiver failing once gets the same delivery again and the run completes; a redelivered
`job.due` delivers again under the same id, so the receiver sees one delivery id per run; a
receiver refusing the delivery fails the run with its status; a receiver on an address the
generator may not reach gets no request at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.secrets import generate_key
from tests.support import processes
from tests.support.fakes.github import FakeGitHub, commit, pull
from tests.support.fakes.receiver import WebhookReceiver
from tests.support.fakes.server import ThreadedServer
from tests.support.polling import poll
from tests.support.redelivery import republish
from tests.support.runs import create_project, finished
from tests.support.sql import query

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2e_token"
# One key for every process of a test's stack: the api encrypts, the generator decrypts.
SECRET_KEY = generate_key()


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    now = datetime.now(UTC)
    recent = now - timedelta(hours=1)
    fake.add_repo(
        "octo",
        "hooked",
        commits=[commit(f"{n:040x}", f"fix: edge case {n}", recent) for n in range(3)],
        pulls=[pull(5, "feat: webhook jobs", updated=recent, merged=recent, login="zoe")],
    )
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def stack_env(database_url: str, amqp_url: str, tmp_path: Path, github_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
        "HERALD_GITHUB_API_URL": github_url,
        "HERALD_GITHUB_TOKEN": TOKEN,
        # The local GitHub and the local receiver listen on loopback, plain http.
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        "HERALD_WEBHOOK_ALLOW_HTTP": "true",
        "HERALD_SECRET_KEY": SECRET_KEY,
    }


@pytest.fixture
def pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    env = stack_env(fresh_database_url, fresh_amqp_url, tmp_path, github[1].url)
    with processes.running(("api", "scanner", "generator"), env, tmp_path) as services:
        yield services


@pytest.fixture
def api(pipeline: dict[str, processes.Service], fresh_database_url: str) -> Iterator[httpx.Client]:
    with processes.signed_in_client(pipeline["api"], fresh_database_url) as client:
        yield client


def webhook_job(api: httpx.Client, receiver: WebhookReceiver, project_id: str) -> str:
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": "Hooked digest",
            "type": "WEBHOOK",
            "webhookUrl": receiver.url,
            "frequency": "DAILY",
            "timeConfig": {"hour": (datetime.now(UTC).hour + 12) % 24, "minute": 0},
            "maxRetries": 3,
            "retryDelay": 1,
        },
    )
    assert job.status_code == 201, job.text
    data = job.json()["data"]
    receiver.secret = data["webhookSecret"]
    return str(data["id"])


def run(api: httpx.Client, job_id: str) -> dict[str, Any]:
    triggered = api.post("/api/cron/trigger", json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    return finished(api, str(triggered.json()["data"]["id"]))


def deliver_steps(execution: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (step["kind"], step["detail"] or "")
        for step in execution["steps"]
        if step["step"] == "deliver"
    ]


def test_a_receiver_failing_once_gets_the_same_delivery_again_and_the_run_completes(
    api: httpx.Client,
    receiver: WebhookReceiver,
    fresh_database_url: str,
    fresh_amqp_url: str,
) -> None:
    project_id = create_project(api, "octo", "hooked", ["x", "blog"])
    job_id = webhook_job(api, receiver, project_id)
    receiver.answer(500)

    execution = run(api, job_id)

    assert execution["status"] == "COMPLETED", execution
    delivery = execution["metadata"]["delivery"]
    assert delivery["outcome"] == "DELIVERED"
    assert (delivery["attempts"], delivery["statusCode"]) == (2, 200)
    assert delivery["host"].startswith("127.0.0.1:")
    kinds = [kind for kind, _ in deliver_steps(execution)]
    assert "failed" in kinds and kinds[-1] == "completed", execution["steps"]
    seen = receiver.of(execution["id"])
    assert [item.answered for item in seen] == [500, 200]
    assert all(item.signature_valid for item in seen)
    assert {item.delivery_id for item in seen} == {delivery["deliveryId"]}
    assert all(item.event == "activity" for item in seen)
    sent = seen[-1].body
    assert sent["job"] == {"id": job_id, "name": "Hooked digest", "type": "WEBHOOK"}
    assert sent["repository"]["owner"] == "octo" and sent["repository"]["name"] == "hooked"
    assert sent["activity"]["commits"] == 3 and sent["activity"]["pullRequests"] == 1
    assert sent["window"]["end"] is not None
    # The posts delivered are the posts stored: written once, not again for the retry.
    stored = {post["platform"]: post["body"] for post in execution["content"]}
    assert {post["platform"]: post["body"] for post in sent["posts"]} == stored
    assert seen[0].body["posts"] == sent["posts"]

    # A redelivered job.due runs the scan and the delivery again: the same delivery id.
    rows = query(
        fresh_database_url,
        "SELECT event_id, payload FROM outbox WHERE routing_key = 'job.due'",
    )
    assert len(rows) == 1, rows
    asyncio.run(republish(fresh_amqp_url, rows))
    poll(lambda: len(receiver.of(execution["id"])), lambda count: count == 3, timeout=60)
    assert {item.delivery_id for item in receiver.of(execution["id"])} == {delivery["deliveryId"]}
    again = api.get(f"/api/cron/executions/{execution['id']}").json()["data"]
    assert again["status"] == "COMPLETED"
    assert len(again["content"]) == len(execution["content"])

    # The job's next run has an empty window: nothing to deliver, and it completes as any job.
    quiet = run(api, job_id)
    assert quiet["status"] == "COMPLETED", quiet
    assert "delivery" not in quiet["metadata"]
    assert receiver.of(quiet["id"]) == []

    # Another run with activity is another delivery id: one per execution.
    other_job = webhook_job(api, receiver, project_id)
    second = run(api, other_job)
    assert second["status"] == "COMPLETED", second
    [other] = receiver.of(second["id"])
    assert other.signature_valid
    assert other.delivery_id == second["metadata"]["delivery"]["deliveryId"]
    assert other.delivery_id != delivery["deliveryId"]


@pytest.mark.parametrize("status", [410, 400])
def test_a_receiver_refusing_the_delivery_fails_the_run_with_its_status(
    api: httpx.Client, receiver: WebhookReceiver, status: int
) -> None:
    project_id = create_project(api, "octo", "hooked", ["x"])
    job_id = webhook_job(api, receiver, project_id)
    receiver.status = status

    execution = run(api, job_id)

    assert execution["status"] == "FAILED", execution
    assert str(status) in execution["errorMessage"]
    assert "webhook delivery" in execution["errorMessage"]
    delivery = execution["metadata"]["delivery"]
    assert (delivery["outcome"], delivery["statusCode"], delivery["attempts"]) == (
        "FAILED",
        status,
        1,
    )
    assert [kind for kind, _ in deliver_steps(execution)] == ["started", "failed"]
    assert [item.answered for item in receiver.of(execution["id"])] == [status]
    # The posts were written and are kept: only the delivery failed.
    assert [post["platform"] for post in execution["content"]] == ["x"]


def test_no_request_reaches_a_loopback_receiver_the_generator_may_not_reach(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    receiver: WebhookReceiver,
) -> None:
    # The api stored the URL when loopback was allowed; the generator's operator allows only
    # another network (as after a rule tightened): it must not send.
    env = stack_env(fresh_database_url, fresh_amqp_url, tmp_path, github[1].url)
    strict = {**env, "HERALD_OUTBOUND_ALLOW_NETWORKS": "10.99.0.0/16"}
    with (
        processes.running(("api", "scanner"), env, tmp_path) as services,
        processes.running(("generator",), strict, tmp_path),
        processes.signed_in_client(services["api"], fresh_database_url) as api,
    ):
        project_id = create_project(api, "octo", "hooked", ["x"])
        job_id = webhook_job(api, receiver, project_id)

        execution = run(api, job_id)

    assert execution["status"] == "FAILED", execution
    assert "a loopback address" in execution["errorMessage"]
    delivery = execution["metadata"]["delivery"]
    assert delivery["outcome"] == "FAILED" and delivery["statusCode"] is None
    assert receiver.received == []
