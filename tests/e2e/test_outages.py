"""The broker and the database going away while jobs fire (issue 8), all five as real processes.

Every service reaches RabbitMQ through one loopback proxy, and the api and the scheduler reach
PostgreSQL through another, so a test can cut either dependency under running processes
without touching the machine's servers. The test itself reads and seeds the database
directly. Jobs are daily jobs whose next run is set a few seconds apart, so slots keep falling
due through the outage and each job has exactly one slot in the test: its stored next run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from services.deadletters import list_dead_letters
from shared import topology
from tests.support import processes
from tests.support.fakes.github import FakeGitHub, commit
from tests.support.fakes.server import ThreadedServer
from tests.support.polling import poll
from tests.support.proxy import TcpProxy
from tests.support.sql import query

pytestmark = pytest.mark.e2e

TOKEN = "ghp_outage_token"
PLATFORMS = ["x", "changelog"]
OPEN = ("PENDING", "RUNNING")


@dataclass
class Stack:
    services: dict[str, processes.Service]
    broker: TcpProxy
    database: TcpProxy
    database_url: str  # direct, for the test's own reads
    amqp_url: str  # direct, for the test's own reads
    api: httpx.Client


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    recent = datetime.now(UTC) - timedelta(hours=1)
    fake.add_repo(
        "octo",
        "herald",
        commits=[
            commit(f"{n:040x}", f"fix: edge case {n}", recent + timedelta(seconds=n))
            for n in range(3)
        ],
    )
    # Each scan makes a few requests: a short delay keeps executions mid-pipeline for a while.
    fake.delay = 0.2
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def stack(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
) -> Iterator[Stack]:
    amqp = urlsplit(fresh_amqp_url)
    broker = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672, processes.free_port())
    netloc = f"{amqp.username}:{amqp.password}@127.0.0.1:{broker.port}"
    proxied_amqp = urlunsplit((amqp.scheme, netloc, amqp.path, amqp.query, ""))
    pg = make_url(fresh_database_url)
    database = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432, processes.free_port())
    proxied_database = pg.set(host="127.0.0.1", port=database.port).render_as_string(
        hide_password=False
    )
    broker.restore()
    database.restore()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "DATABASE_URL": proxied_database,
        "AMQP_URL": proxied_amqp,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
        "HERALD_SCHEDULER_MAX_SLEEP": "1",
        "HERALD_GITHUB_API_URL": github[1].url,
        # The local GitHub server listens on loopback, which the outbound guard refuses
        # unless the operator allows it.
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        "HERALD_GITHUB_TOKEN": TOKEN,
    }
    services = {name: processes.start(name, env, logs) for name in processes.SERVICES}
    client = processes.signed_in_client(services["api"], fresh_database_url)
    try:
        for service in services.values():
            processes.wait_ready(service)
        yield Stack(services, broker, database, fresh_database_url, fresh_amqp_url, client)
    finally:
        client.close()
        # The services drain against reachable servers; the proxies close once they stopped.
        broker.restore()
        database.restore()
        try:
            processes.stop_all(services)
        finally:
            broker.close()
            database.close()


def create_jobs(stack: Stack, count: int) -> list[str]:
    project = stack.api.post(
        "/api/projects",
        json={
            "name": "herald",
            "githubRepoOwner": "octo",
            "githubRepoName": "herald",
            "platforms": PLATFORMS,
        },
    )
    assert project.status_code == 201, project.text
    ids = []
    for n in range(count):
        job = stack.api.post(
            "/api/cron/schedule",
            json={
                "projectId": project.json()["data"]["id"],
                "name": f"digest {n}",
                "frequency": "DAILY",
                # Twelve hours away: the job's only slot in the test is the one set below.
                "timeConfig": {"hour": (datetime.now(UTC).hour + 12) % 24, "minute": 0},
            },
        )
        assert job.status_code == 201, job.text
        ids.append(str(job.json()["data"]["id"]))
    return ids


def due_every(
    stack: Stack, job_ids: list[str], *, first: float, every: float
) -> dict[str, datetime]:
    """Make job n due `first + n * every` seconds from now; return each job's slot."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=first)
    slots = {job_id: start + timedelta(seconds=n * every) for n, job_id in enumerate(job_ids)}
    for job_id, slot in slots.items():
        query(
            stack.database_url,
            "UPDATE cron_jobs SET next_run_at = :slot WHERE id = :id",
            {"slot": slot, "id": job_id},
        )
    return slots


def executions(stack: Stack) -> list[Any]:
    return query(
        stack.database_url,
        "SELECT id, job_id, scheduled_for, status FROM cron_executions ORDER BY scheduled_for",
    )


def count(stack: Stack, sql: str) -> int:
    return int(query(stack.database_url, sql)[0][0])


def assert_every_slot_ran_once_to_completion(stack: Stack, slots: dict[str, datetime]) -> None:
    """One COMPLETED execution per job at its slot, each finished, alerted and relayed once."""
    rows = poll(
        lambda: executions(stack),
        lambda rows: len(rows) >= len(slots) and all(row.status not in OPEN for row in rows),
        timeout=90,
    )
    assert sorted((row.job_id, row.scheduled_for) for row in rows) == sorted(slots.items())
    assert {row.status for row in rows} == {"COMPLETED"}, [(r.id, r.status) for r in rows]
    ids = [row.id for row in rows]
    finished = query(
        stack.database_url,
        "SELECT execution_id, count(*) FROM execution_steps"
        " WHERE step = 'execution' AND kind = 'completed' GROUP BY execution_id",
    )
    assert sorted(finished) == sorted((i, 1) for i in ids)
    posts = query(
        stack.database_url, "SELECT execution_id, count(*) FROM contents GROUP BY execution_id"
    )
    assert sorted(posts) == sorted((i, len(PLATFORMS)) for i in ids)
    # Each execution's execution.finished reached the notifier, whose alert the api stored once.
    alerts = poll(
        lambda: query(
            stack.database_url,
            "SELECT execution_id, count(*) FROM notifications GROUP BY execution_id",
        ),
        lambda found: len(found) >= len(ids),
        timeout=30,
    )
    time.sleep(1)  # room for a duplicate to land, were one on its way
    assert sorted(alerts) == sorted((i, 1) for i in ids)
    by_key = dict(
        query(
            stack.database_url,
            "SELECT routing_key, count(*) FROM outbox GROUP BY routing_key",
        )
    )
    assert by_key == {"job.due": len(ids), "execution.finished": len(ids)}, by_key
    poll(
        lambda: count(stack, "SELECT count(*) FROM outbox WHERE published_at IS NULL"),
        lambda pending: pending == 0,
        timeout=20,
    )
    for work in topology.WORK_QUEUES:
        letters = asyncio.run(list_dead_letters(stack.amqp_url, queue=work.name))
        assert letters == [], (work.name, letters)


@pytest.mark.parametrize("outage", ["cut", "stall"])
def test_a_broker_gone_for_30_s_while_jobs_fire_loses_nothing_and_drains(
    stack: Stack, outage: str
) -> None:
    """`cut` resets every connection and refuses new ones; `stall` keeps them open, silent."""
    jobs = create_jobs(stack, 16)
    # Due every 2.5 s from 2 s on: a few before the outage, most during it, a few after.
    slots = due_every(stack, jobs, first=2, every=2.5)
    poll(lambda: executions(stack), lambda rows: len(rows) >= 1, timeout=20)

    getattr(stack.broker, outage)()
    cut_at = time.monotonic()
    # The scheduler needs only the database: it goes on firing, and the outbox holds the events.
    held = poll(
        lambda: count(stack, "SELECT count(*) FROM outbox WHERE published_at IS NULL"),
        lambda pending: pending >= 5,
        timeout=30,
    )
    assert held >= 5
    if outage == "cut":
        for service in stack.services.values():
            poll(lambda s=service: readiness(s), lambda status: status == 503, timeout=20)
    time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
    fired_during = len(executions(stack))
    stack.broker.restore()

    assert fired_during < len(slots)  # some slots still fall due after the broker is back
    assert_every_slot_ran_once_to_completion(stack, slots)


def test_a_database_gone_mid_run_leaves_nothing_running_and_loses_no_slot(
    stack: Stack,
) -> None:
    jobs = create_jobs(stack, 12)
    slots = due_every(stack, jobs, first=2, every=1.5)
    # Cut while executions are mid-pipeline: the scanner and generator carry on without the
    # database, and their events wait for the api.
    poll(
        lambda: executions(stack),
        lambda rows: any(row.status == "RUNNING" for row in rows),
        timeout=30,
    )
    stack.database.cut()
    poll(lambda: readiness(stack.services["api"]), lambda status: status == 503, timeout=20)
    time.sleep(15)
    stack.database.restore()

    assert_every_slot_ran_once_to_completion(stack, slots)


def readiness(service: processes.Service) -> int:
    try:
        with httpx.Client(timeout=3) as client:
            return client.get(f"{service.url}/readyz").status_code
    except httpx.HTTPError:
        return 0
