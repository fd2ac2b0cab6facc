"""Job dependencies end to end: all five services as real processes on RabbitMQ and
PostgreSQL, a local git repository, A → B → C.

In herald the api starts a dependent's run in the transaction that records its upstream's
end, and it learns of that end from the pipeline's final event (`content.generated` for a
run that writes posts, a final `step.failed` for one that fails), not from
`execution.finished` (only the notifier consumes that one; it starts nothing). So "the
upstream's end delivered twice" is that final event delivered to the api twice: the same
message again (same event id, which the inbox drops), and the same end published again
under a new event id (which the inbox lets through, and the run being terminal and the
unique key (job, upstream execution) make a no-op).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from tests.support import processes
from tests.support.polling import poll
from tests.support.runs import finished
from tests.support.sql import query

pytestmark = pytest.mark.e2e

EXCHANGE = "herald"
TAP = "tests.final-events"


@pytest.fixture
def api(stack: dict[str, processes.Service], fresh_database_url: str) -> Iterator[httpx.Client]:
    client = processes.signed_in_client(stack["api"], fresh_database_url)
    yield client
    client.close()


def new_project(api: httpx.Client) -> str:
    project = api.post(
        "/api/projects", json={"name": "demo", "localRepoPath": "demo", "platforms": ["x"]}
    )
    assert project.status_code == 201, project.text
    return str(project.json()["data"]["id"])


def new_job(api: httpx.Client, project_id: str, name: str, **fields: Any) -> str:
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": name,
            # Its own schedule, far from now: only the dependencies start runs here.
            "frequency": "MONTHLY",
            "timeConfig": {"dayOfMonth": 28, "hour": 3, "minute": 0},
            "maxRetries": 0,
            **fields,
        },
    )
    assert job.status_code == 201, job.text
    return str(job.json()["data"]["id"])


def chain(api: httpx.Client) -> tuple[str, str, str]:
    project_id = new_project(api)
    a = new_job(api, project_id, "a")
    b = new_job(api, project_id, "b", dependsOn=[{"jobId": a, "on": "onSuccess"}])
    c = new_job(api, project_id, "c", dependsOn=[{"jobId": b, "on": "onSuccess"}])
    return a, b, c


def trigger(api: httpx.Client, job_id: str) -> str:
    triggered = api.post("/api/cron/trigger", json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    return str(triggered.json()["data"]["id"])


def runs_of(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    runs = api.get("/api/cron/executions", params={"jobId": job_id}).json()["data"]
    return sorted(runs, key=lambda run: run["createdAt"])


def ended_runs(api: httpx.Client, job_id: str, count: int) -> list[dict[str, Any]]:
    """Wait for `count` runs of the job, all ended; return them, oldest first."""
    return list(
        poll(
            lambda: runs_of(api, job_id),
            lambda runs: (
                len(runs) >= count
                and all(run["status"] not in ("PENDING", "RUNNING") for run in runs)
            ),
            timeout=120,
        )
    )


def assert_follows(upstream: dict[str, Any], dependent: dict[str, Any]) -> None:
    assert dependent["trigger"] == "DEPENDENCY", dependent
    assert dependent["upstreamExecutionId"] == upstream["id"]
    # In order: the dependent's run started once its upstream's had ended.
    assert dependent["startedAt"] >= upstream["completedAt"], (upstream, dependent)


def metric(service: processes.Service, prefix: str) -> float:
    with httpx.Client(timeout=5) as client:
        text = client.get(f"{service.url}/metrics").text
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.removeprefix(prefix + " "))
    return 0.0


DUPLICATES = 'herald_events_duplicate_total{consumer="api"}'


async def open_tap(amqp_url: str) -> None:
    """A queue of the test's own, bound like the api's, keeping copies of the final events."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE, ensure=True)
        queue = await channel.declare_queue(TAP, durable=True)
        await queue.bind(exchange, routing_key="content.generated")
    finally:
        await connection.close()


async def tapped(amqp_url: str, execution_id: str) -> aio_pika.abc.AbstractIncomingMessage:
    """The copy of the final event of `execution_id`, as the broker delivered it."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(TAP)
        async with queue.iterator(timeout=30) as messages:
            async for message in messages:
                await message.ack()
                if json.loads(message.body)["executionId"] == execution_id:
                    return message
    finally:
        await connection.close()
    raise AssertionError(f"no final event of {execution_id} tapped")


async def publish(amqp_url: str, message_id: str, body: bytes, routing_key: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE, ensure=True)
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                type=routing_key,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )
    finally:
        await connection.close()


def test_a_chain_runs_in_order_once_per_upstream_run_with_its_final_event_delivered_twice(
    stack: dict[str, processes.Service],
    api: httpx.Client,
    fresh_amqp_url: str,
    fresh_database_url: str,
) -> None:
    asyncio.run(open_tap(fresh_amqp_url))
    a, b, c = chain(api)

    a_run = finished(api, trigger(api, a))
    [b_run] = ended_runs(api, b, 1)
    [c_run] = ended_runs(api, c, 1)
    assert [run["status"] for run in (a_run, b_run, c_run)] == ["COMPLETED"] * 3
    assert_follows(a_run, b_run)
    assert_follows(b_run, c_run)
    # B can read what it followed: A's posts.
    b_view = api.get(f"/api/cron/executions/{b_run['id']}").json()["data"]
    assert b_view["upstream"]["id"] == a_run["id"] and b_view["upstream"]["posts"] == 1
    posts = api.get(b_view["upstream"]["content"]).json()["data"]
    assert [post["platform"] for post in posts] == ["x"]

    # A's final event again: the very message, and the same end under a new event id.
    final = asyncio.run(tapped(fresh_amqp_url, a_run["id"]))
    again = {**json.loads(final.body), "eventId": f"evt_{uuid.uuid4().hex}"}
    duplicates = metric(stack["api"], DUPLICATES)
    asyncio.run(
        publish(fresh_amqp_url, again["eventId"], json.dumps(again).encode(), "content.generated")
    )
    asyncio.run(publish(fresh_amqp_url, str(final.message_id), final.body, "content.generated"))
    # Both reached the api: the new id is in its inbox, the same id was dropped as a duplicate.
    poll(
        lambda: query(
            fresh_database_url,
            "SELECT count(*) FROM processed_events WHERE event_id = :id",
            {"id": again["eventId"]},
        )[0][0],
        lambda count: count == 1,
    )
    poll(lambda: metric(stack["api"], DUPLICATES), lambda count: count >= duplicates + 1)

    # A second run of A: one more B and C, following it; the first run's end started no other.
    a_second = finished(api, trigger(api, a))
    b_runs = ended_runs(api, b, 2)
    c_runs = ended_runs(api, c, 2)
    assert [run["upstreamExecutionId"] for run in b_runs] == [a_run["id"], a_second["id"]]
    assert [run["upstreamExecutionId"] for run in c_runs] == [run["id"] for run in b_runs]
    assert_follows(a_second, b_runs[1])
    assert_follows(b_runs[1], c_runs[1])


def test_the_api_restarted_between_an_upstreams_end_and_its_dependents_run_starts_each_once(
    stack: dict[str, processes.Service], api: httpx.Client, fresh_database_url: str
) -> None:
    """A's final event waits in the api's queue while the api is down; the api comes back,
    records A's end and starts B; it is killed again before B runs; B and C still run once."""
    a, b, c = chain(api)
    processes.stop(stack["generator"])
    a_id = trigger(api, a)
    # A scanned (the api has recorded it), its generation waits for a generator.
    poll(
        lambda: api.get(f"/api/cron/executions/{a_id}").json()["data"]["steps"],
        lambda steps: ("scan", "completed") in [(s["step"], s["kind"]) for s in steps],
    )
    assert processes.kill(stack["api"]) == -9
    stack["generator"] = processes.restart(stack["generator"])
    processes.wait_ready(stack["generator"])
    # The generator has taken A's scan: its final event is queued for the api.
    poll(
        lambda: metric(
            stack["generator"],
            'herald_messages_consumed_total{outcome="ok",queue="herald.generator"}',
        ),
        lambda count: count >= 1,
    )
    processes.stop(stack["scanner"])  # so B, once started, waits for a scanner

    stack["api"] = processes.restart(stack["api"])
    processes.wait_ready(stack["api"])
    [b_pending] = poll(lambda: runs_of(api, b), lambda runs: len(runs) == 1)
    assert (b_pending["status"], b_pending["upstreamExecutionId"]) == ("PENDING", a_id)
    assert processes.kill(stack["api"]) == -9
    stack["api"] = processes.restart(stack["api"])
    processes.wait_ready(stack["api"])
    stack["scanner"] = processes.restart(stack["scanner"])
    processes.wait_ready(stack["scanner"])

    a_run = finished(api, a_id)
    [b_run] = ended_runs(api, b, 1)
    [c_run] = ended_runs(api, c, 1)
    assert [run["status"] for run in (a_run, b_run, c_run)] == ["COMPLETED"] * 3
    assert b_run["id"] == b_pending["id"]
    assert_follows(a_run, b_run)
    assert_follows(b_run, c_run)
    rows = query(
        fresh_database_url,
        "SELECT job_id, count(*) FROM cron_executions GROUP BY job_id ORDER BY job_id",
    )
    assert {row[0]: row[1] for row in rows} == {a: 1, b: 1, c: 1}


def test_on_failure_fires_only_when_the_upstream_fails(
    stack: dict[str, processes.Service], api: httpx.Client, tmp_path: Path
) -> None:
    project_id = new_project(api)
    a = new_job(api, project_id, "a")
    alarm = new_job(api, project_id, "alarm", dependsOn=[{"jobId": a, "on": "onFailure"}])
    follow = new_job(api, project_id, "follow", dependsOn=[{"jobId": a, "on": "onSuccess"}])

    first = finished(api, trigger(api, a))
    assert first["status"] == "COMPLETED"
    # The same end that starts `follow` would have started `alarm`, in the same transaction.
    [followed] = ended_runs(api, follow, 1)
    assert followed["upstreamExecutionId"] == first["id"]
    assert runs_of(api, alarm) == []

    # The repository gone: A's next run fails, and only `alarm` follows it.
    shutil.move(tmp_path / "repos" / "demo", tmp_path / "repos" / "gone")
    second = finished(api, trigger(api, a))
    assert second["status"] == "FAILED", second
    [alarmed] = ended_runs(api, alarm, 1)
    assert_follows(second, alarmed)
    assert [run["id"] for run in runs_of(api, follow)] == [followed["id"]]
