"""Execution lifecycle under faults (issue 8): crashes mid-message, replays, poison messages.

All five services run as real processes on a fresh database and vhost. The scanner reads a
local GitHub server the test can hold (`hang`), the notifier sends email to a local Resend the
test can hold; a held request is the point where the test SIGKILLs the service.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.deadletters import list_dead_letters
from tests.support import processes
from tests.support.fakes.github import FakeGitHub, commit, pull
from tests.support.fakes.resend import FakeResend
from tests.support.fakes.server import ThreadedServer
from tests.support.polling import poll
from tests.support.redelivery import republish
from tests.support.sql import query

pytestmark = pytest.mark.e2e

TOKEN = "ghp_faults_token"
PLATFORMS = ["x", "blog", "changelog"]


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    recent = datetime.now(UTC) - timedelta(hours=1)
    fake.add_repo(
        "octo",
        "herald",
        commits=[
            commit(f"{n:040x}", f"fix: edge case {n}", recent + timedelta(seconds=n))
            for n in range(5)
        ],
        pulls=[pull(11, "feat: weekly digests", updated=recent, merged=recent)],
    )
    server = fake.serve()
    yield fake, server
    fake.hang = False
    server.close()


@pytest.fixture
def herald(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    resend: FakeResend,
    github: tuple[FakeGitHub, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    """The five services; a test that kills one puts its replacement in the dict."""
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
        "HERALD_SCHEDULER_MAX_SLEEP": "5",
        "HERALD_GITHUB_API_URL": github[1].url,
        # The local GitHub server listens on loopback, which the outbound guard refuses
        # unless the operator allows it.
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        "HERALD_GITHUB_TOKEN": TOKEN,
        "HERALD_RESEND_API_KEY": resend.api_key,
        "HERALD_RESEND_API_URL": resend.url,
    }
    with processes.running(processes.SERVICES, env, logs) as services:
        yield services


@pytest.fixture
def api(herald: dict[str, processes.Service], fresh_database_url: str) -> Iterator[httpx.Client]:
    with processes.signed_in_client(herald["api"], fresh_database_url) as client:
        yield client


def own_address(api: httpx.Client) -> str:
    """The signed-in user's own address: alert email goes there without asking first."""
    return str(api.get("/api/me").json()["data"]["email"])


def create_job(api: httpx.Client) -> str:
    project = api.post(
        "/api/projects",
        json={
            "name": "herald",
            "githubRepoOwner": "octo",
            "githubRepoName": "herald",
            "platforms": PLATFORMS,
            "notificationSettings": {"recipients": [own_address(api)]},
        },
    )
    assert project.status_code == 201, project.text
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project.json()["data"]["id"],
            "name": "Daily digest",
            "frequency": "DAILY",
            # The previous slot, and so the window's start, lies about twelve hours back.
            "timeConfig": {"hour": (datetime.now(UTC).hour + 12) % 24, "minute": 0},
        },
    )
    assert job.status_code == 201, job.text
    return str(job.json()["data"]["id"])


def trigger(api: httpx.Client, job_id: str) -> str:
    triggered = api.post("/api/cron/trigger", json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    return str(triggered.json()["data"]["id"])


def execution(api: httpx.Client, execution_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/cron/executions/{execution_id}").json()["data"])


def finished(api: httpx.Client, execution_id: str, timeout: float = 60) -> dict[str, Any]:
    return dict(
        poll(
            lambda: execution(api, execution_id),
            lambda data: data["status"] not in ("PENDING", "RUNNING"),
            timeout,
        )
    )


def emailed(api: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    """Wait for the email delivery record of an execution; return its email deliveries."""
    rows = poll(
        lambda: execution(api, execution_id)["deliveries"],
        lambda rows: any(row["channel"] == "email" for row in rows),
    )
    return [row for row in rows if row["channel"] == "email"]


def alerts(api: httpx.Client) -> list[dict[str, Any]]:
    return list(api.get("/api/notifications").json()["data"])


def assert_completed_once(
    api: httpx.Client, job_id: str, execution_id: str, resend: FakeResend
) -> None:
    """One COMPLETED execution, one post per platform, one in-app alert, one email sent."""
    done = finished(api, execution_id)
    assert done["status"] == "COMPLETED", done
    platforms = [post["platform"] for post in done["content"]]
    assert sorted(platforms) == sorted(PLATFORMS), platforms
    completed = [s for s in done["steps"] if (s["step"], s["kind"]) == ("execution", "completed")]
    assert len(completed) == 1, done["steps"]
    runs = api.get("/api/cron/executions", params={"jobId": job_id}).json()["data"]
    assert [(run["id"], run["status"]) for run in runs] == [(execution_id, "COMPLETED")]

    emails = emailed(api, execution_id)
    recipient = own_address(api)
    assert [(row["recipient"], row["outcome"]) for row in emails] == [(recipient, "SENT")]
    poll(lambda: alerts(api), lambda rows: len(rows) >= 1)
    time.sleep(1)  # room for a duplicate to land, were one on its way
    rows = alerts(api)
    assert [(row["kind"], row["executionId"], row["count"]) for row in rows] == [
        ("job_success", execution_id, 1)
    ]
    assert len(resend.sent) == 1, resend.sent
    assert recipient in str(resend.sent[0]["to"])


def test_a_scanner_killed_mid_scan_is_redelivered_and_the_run_completes_once(
    herald: dict[str, processes.Service],
    api: httpx.Client,
    github: tuple[FakeGitHub, ThreadedServer],
    resend: FakeResend,
) -> None:
    fake, _ = github
    fake.hang = True  # every GitHub call waits: the scanner is held inside its handler
    job_id = create_job(api)
    execution_id = trigger(api, job_id)
    poll(
        lambda: execution(api, execution_id)["steps"],
        lambda steps: any((s["step"], s["kind"]) == ("scan", "started") for s in steps),
    )
    assert fake.requests == []  # the scan is in flight, nothing answered yet

    assert processes.kill(herald["scanner"]) == -9
    fake.hang = False
    herald["scanner"] = processes.restart(herald["scanner"])
    processes.wait_ready(herald["scanner"])

    assert_completed_once(api, job_id, execution_id, resend)
    # The new process is the one that took the redelivered job.due.
    assert consumed_ok(herald["scanner"], "herald.scanner") == 1


def test_a_notifier_killed_while_sending_email_sends_it_once(
    herald: dict[str, processes.Service],
    api: httpx.Client,
    resend: FakeResend,
) -> None:
    original = resend.handle
    arrived, release = threading.Event(), threading.Event()
    calls = 0

    def held(path: str, headers: dict[str, str], raw: bytes) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # hold only the first request, the one the dying notifier sent
            arrived.set()
            release.wait(30)
        return original(path, headers, raw)

    resend.handle = held  # type: ignore[method-assign]
    job_id = create_job(api)
    execution_id = trigger(api, job_id)
    assert arrived.wait(60), herald["notifier"].logs()

    assert processes.kill(herald["notifier"]) == -9
    # The request reached Resend and is applied there, but the notifier never hears back.
    release.set()
    poll(lambda: len(resend.sent), lambda sent: sent == 1, timeout=10)
    herald["notifier"] = processes.restart(herald["notifier"])
    processes.wait_ready(herald["notifier"])

    assert_completed_once(api, job_id, execution_id, resend)
    assert consumed_ok(herald["notifier"], "herald.notifier") == 1
    keys = {request["headers"].get("idempotency-key") for request in resend.requests}
    assert len(resend.requests) >= 2 and len(keys) == 1 and None not in keys, resend.requests


def table_counts(database_url: str) -> tuple[int, ...]:
    sql = (
        "SELECT (SELECT count(*) FROM cron_executions), (SELECT count(*) FROM contents),"
        " (SELECT count(*) FROM notifications), (SELECT count(*) FROM deliveries),"
        " (SELECT count(*) FROM execution_steps)"
    )
    return tuple(query(database_url, sql)[0])


def consumed_ok(service: processes.Service, queue: str) -> float:
    with httpx.Client(timeout=5) as client:
        metrics = client.get(f"{service.url}/metrics").text
    prefix = f'herald_messages_consumed_total{{outcome="ok",queue="{queue}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def test_replaying_every_job_due_ever_published_creates_nothing_new(
    herald: dict[str, processes.Service],
    api: httpx.Client,
    resend: FakeResend,
    fresh_database_url: str,
    fresh_amqp_url: str,
) -> None:
    job_id = create_job(api)
    ids = []
    for _ in range(2):
        ids.append(trigger(api, job_id))
        assert finished(api, ids[-1])["status"] == "COMPLETED"
        emailed(api, ids[-1])
    # Both runs' alerts, unread, are one alert of the job counting two.
    poll(lambda: alerts(api), lambda rows: [row["count"] for row in rows] == [2])

    def snapshot() -> dict[str, Any]:
        runs = api.get("/api/cron/executions", params={"jobId": job_id}).json()["data"]
        return {
            "runs": sorted((run["id"], run["status"]) for run in runs),
            "content": {
                i: sorted((p["platform"], p["body"]) for p in execution(api, i)["content"])
                for i in ids
            },
            "steps": {i: len(execution(api, i)["steps"]) for i in ids},
            "alerts": sorted((row["id"], row["count"]) for row in alerts(api)),
            "emails": len(resend.sent),
        }

    before = snapshot()
    counts = table_counts(fresh_database_url)
    assert counts[0] == 2, counts
    rows = query(
        fresh_database_url,
        "SELECT event_id, payload FROM outbox WHERE routing_key = 'job.due' ORDER BY id",
    )
    assert len(rows) == 2, rows
    scanned = consumed_ok(herald["scanner"], "herald.scanner")

    asyncio.run(republish(fresh_amqp_url, rows))

    # The scanner has taken both copies; then give any downstream effect time to land.
    poll(
        lambda: consumed_ok(herald["scanner"], "herald.scanner"),
        lambda count: count >= scanned + 2,
        timeout=30,
    )
    time.sleep(3)
    assert snapshot() == before
    assert table_counts(fresh_database_url) == counts


def test_a_poison_job_due_is_dead_lettered_while_a_valid_run_completes(
    herald: dict[str, processes.Service],
    api: httpx.Client,
    fresh_amqp_url: str,
) -> None:
    asyncio.run(republish(fresh_amqp_url, [("poison-1", "{not json at all")]))
    job_id = create_job(api)
    started = time.monotonic()
    execution_id = trigger(api, job_id)
    assert finished(api, execution_id, timeout=30)["status"] == "COMPLETED"
    assert time.monotonic() - started < 30

    def dead() -> list[Any]:
        return asyncio.run(list_dead_letters(fresh_amqp_url, queue="herald.scanner"))

    letters = poll(dead, lambda rows: len(rows) >= 1, timeout=20)
    assert [(row.message_id, row.routing_key) for row in letters] == [("poison-1", "job.due")]
    assert "message dead-lettered" in herald["scanner"].logs()
