"""`herald standalone` and `herald run` with no servers: one process runs the real product.

Each test starts the command as a real process on loopback, with no database or broker URL
(or with them pointed at closed loopback ports), and follows executions through the REST API.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from tests.standalone.conftest import (
    alerts_for,
    demo_token,
    first_run_id,
    get,
    restart,
    settle_demo,
    standalone_env,
    start,
    wait_exit,
    wait_status,
)
from tests.support import processes
from tests.support.fakes.openai import SERVER_ERROR, FakeOpenAI
from tests.support.fakes.server import ThreadedServer
from tests.support.polling import poll

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("standalone")]

DEMO_PLATFORMS = 4  # x, linkedin, blog, changelog


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return processes.free_port()


def test_the_demo_runs_at_the_first_start_to_posts_about_real_commits_and_an_alert(
    tmp_path: Path,
) -> None:
    port = processes.free_port()
    # Not a git checkout: the demo creates its own small repository beside the data.
    env = standalone_env(tmp_path / "data", port)
    service = start(tmp_path / "work", env)
    try:
        processes.wait_ready(service)
        logs = service.logs()
        assert "herald is running in standalone mode" in logs
        assert "asked for with `herald standalone`" in logs
        assert f"http://127.0.0.1:{port}/docs" in logs
        assert "The demo's first run (Weekly digest, the last 7 days of commits) has started" in (
            logs
        )
        token = demo_token(service)
        execution_id = first_run_id(service)

        execution = wait_status(service, token, execution_id, "COMPLETED")
        assert execution["trigger"] == "MANUAL"
        assert execution["itemsSuccess"] == DEMO_PLATFORMS
        assert execution["metadata"]["activity"]["commits"] == 3
        posts = get(service, token, f"/api/cron/executions/{execution_id}/content")
        assert posts["count"] == DEMO_PLATFORMS
        bodies = " ".join(post["body"] for post in posts["data"])
        assert "daylight-saving" in bodies
        assert (tmp_path / "data" / "demo-repo" / ".git").is_dir()
        alerts = poll(lambda: alerts_for(service, token, execution_id), bool, timeout=60)
        alert = alerts[0]
        assert alert["kind"] == "job_success"
        assert alert["title"] == "Weekly digest completed"
        assert alert["link"] == f"http://127.0.0.1:{port}/console/executions/{execution_id}"
        jobs = get(service, token, "/api/cron/schedules")["data"]
        assert sorted((job["name"], job["frequency"]) for job in jobs) == [
            ("Daily digest", "DAILY"),
            ("Weekly digest", "WEEKLY"),
        ]
    finally:
        code = processes.stop(service)
    assert code == 0, service.logs()
    assert "standalone stopped" in service.logs()


@dataclass
class GatedOpenAI(FakeOpenAI):
    """An OpenAI-compatible server that holds every request until the gate opens."""

    gate: threading.Event = field(default_factory=threading.Event)
    held: int = 0

    async def _handle(self, request: Request) -> Response:
        await request.body()  # read (and kept) before a killed client can hang up on it
        self.held += 1
        while not self.gate.is_set():
            await asyncio.sleep(0.05)
        return await super()._handle(request)


@pytest.mark.parametrize(
    "stop_signal",
    [signal.SIGKILL, signal.SIGINT],
    ids=["killed (a crash)", "Ctrl-C (a clean stop)"],
)
def test_stopped_mid_execution_it_completes_the_execution_once_after_a_restart(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    provider = GatedOpenAI()
    server = ThreadedServer(provider.app).start()
    env = standalone_env(
        tmp_path / "data",
        processes.free_port(),
        HERALD_AI_PROVIDER="openai",
        HERALD_AI_BASE_URL=server.url,
        HERALD_AI_API_KEY=provider.api_key,
        HERALD_AI_MODEL="gpt-test",
    )
    settle_demo(tmp_path / "work", env)
    service = start(tmp_path / "work", env)
    try:
        processes.wait_ready(service)
        token = demo_token(service)
        jobs = get(service, token, "/api/cron/schedules")["data"]
        daily = next(job for job in jobs if job["name"] == "Daily digest")
        response = httpx.post(
            f"{service.url}/api/cron/trigger",
            headers={"Authorization": f"Bearer {token}"},
            json={"jobId": daily["id"]},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        execution_id = response.json()["data"]["id"]

        # Mid-execution: scanned, RUNNING, the generator waiting on the AI provider.
        wait_status(service, token, execution_id, "RUNNING")
        poll(lambda: provider.held, bool, timeout=60)
        service.process.send_signal(stop_signal)
        code = service.process.wait(timeout=60)
        # A clean stop waits for in-flight handlers, then leaves them for the next start.
        assert code == (-9 if stop_signal == signal.SIGKILL else 0), service.logs()
        provider.gate.set()

        service = restart(service)
        processes.wait_ready(service)
        assert "Resuming:" in service.logs()
        token = demo_token(service)
        execution = wait_status(service, token, execution_id, "COMPLETED")
        assert execution["itemsSuccess"] == DEMO_PLATFORMS
        poll(lambda: alerts_for(service, token, execution_id), bool, timeout=60)

        # Exactly once: one set of posts, one completion, one alert, whatever was redone.
        detail = get(service, token, f"/api/cron/executions/{execution_id}")["data"]
        assert len(detail["content"]) == DEMO_PLATFORMS
        assert sorted(post["platform"] for post in detail["content"]) == sorted(
            ["x", "linkedin", "blog", "changelog"]
        )
        timeline = [(step["step"], step["kind"]) for step in detail["steps"]]
        assert timeline.count(("generate", "completed")) == 1, timeline
        assert timeline.count(("execution", "completed")) == 1, timeline
        [alert] = alerts_for(service, token, execution_id)
        assert alert["count"] == 1  # a redelivered notification.created counts nothing
        statistics = get(service, token, f"/api/cron/schedules/{daily['id']}/statistics")
        assert statistics["data"]["totalSuccess"] == 1
    finally:
        code = processes.stop(service)
        server.close()
    assert code == 0, service.logs()


def test_make_run_falls_back_to_standalone_where_no_server_answers_and_holds_the_file(
    tmp_path: Path,
) -> None:
    dead = closed_port()
    env = standalone_env(
        tmp_path / "data",
        processes.free_port(),
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{dead}/herald",
        AMQP_URL=f"amqp://guest:guest@127.0.0.1:{dead}/",
    )
    service = start(tmp_path / "work", env, command="run")
    try:
        processes.wait_ready(service)
        logs = service.logs()
        assert "herald is running in standalone mode" in logs
        assert f"PostgreSQL does not answer at 127.0.0.1:{dead}" in logs
        assert f"RabbitMQ does not answer at 127.0.0.1:{dead}" in logs
        token = demo_token(service)
        jobs = get(service, token, "/api/cron/schedules")["data"]
        assert sorted(job["name"] for job in jobs) == ["Daily digest", "Weekly digest"]

        # One process per data file: a second start on it is refused while the first runs.
        second = start(
            tmp_path / "second",
            {**env, "HERALD_API_PORT": str(processes.free_port())},
            command="standalone",
        )
        assert wait_exit(second) == 2
        assert "is in use by another herald process" in second.logs()
    finally:
        code = processes.stop(service)
    assert code == 0, service.logs()

    # The data survives the restart: the same demo and token, no second seed or run.
    first_banner = service.logs()
    service = restart(service)
    try:
        processes.wait_ready(service)
        restart_banner = poll(
            lambda: service.logs()[len(first_banner) :],
            lambda text: "Press Ctrl-C" in text,
            timeout=30,
        )
        assert demo_token(service) == token
        assert "The demo's jobs (Daily digest, Weekly digest)" in restart_banner
        assert "has started" not in restart_banner
        assert len(get(service, token, "/api/cron/schedules")["data"]) == 2
        assert len(get(service, token, "/api/cron/executions")["data"]) == 1
    finally:
        assert processes.stop(service) == 0, service.logs()


def test_a_database_file_that_is_not_herald_is_refused_and_left_untouched(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    foreign = data / "herald.db"
    foreign.write_bytes(b"my tax records, not a database\n" * 10)
    before = foreign.read_bytes()
    service = start(tmp_path / "work", standalone_env(data, processes.free_port()))
    assert wait_exit(service) == 2
    assert "is not a herald database" in service.logs()
    assert foreign.read_bytes() == before


def test_a_failed_platform_is_retried_through_the_in_process_delay_and_only_it_reruns(
    tmp_path: Path,
) -> None:
    provider = FakeOpenAI(script=[SERVER_ERROR])
    server = provider.serve()
    env = standalone_env(
        tmp_path / "data",
        processes.free_port(),
        HERALD_AI_PROVIDER="openai",
        HERALD_AI_BASE_URL=server.url,
        HERALD_AI_API_KEY=provider.api_key,
        HERALD_AI_MODEL="gpt-test",
        HERALD_AI_CALL_RETRIES="0",  # the 500 leaves its platform to the delayed retry
    )
    # The demo's first run done beforehand: every provider call is this test's execution.
    settle_demo(tmp_path / "work", env)
    service = start(tmp_path / "work", env)
    try:
        processes.wait_ready(service)
        token = demo_token(service)
        headers = {"Authorization": f"Bearer {token}"}
        project_id = get(service, token, "/api/projects")["data"][0]["id"]
        created = httpx.post(
            f"{service.url}/api/cron/schedule",
            headers=headers,
            json={
                "projectId": project_id,
                "name": "Retried",
                "frequency": "DAILY",
                "timeConfig": {"hour": 9, "minute": 0},
                "retryDelay": 1,
                "maxRetries": 2,
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        triggered = httpx.post(
            f"{service.url}/api/cron/trigger",
            headers=headers,
            json={"jobId": created.json()["data"]["id"]},
            timeout=10,
        )
        assert triggered.status_code == 202, triggered.text
        execution_id = triggered.json()["data"]["id"]

        execution = wait_status(service, token, execution_id, "COMPLETED")
        assert (execution["itemsSuccess"], execution["itemsFailed"]) == (DEMO_PLATFORMS, 0)
        detail = get(service, token, f"/api/cron/executions/{execution_id}")["data"]
        timeline = [(step["step"], step["kind"], step["attempt"]) for step in detail["steps"]]
        assert ("generate", "failed", 1) in timeline, timeline
        assert ("generate", "completed", 2) in timeline, timeline
        # The first attempt wrote three posts; the retry asked the provider for the fourth alone.
        assert len(provider.calls) == DEMO_PLATFORMS + 1
        assert len(detail["content"]) == DEMO_PLATFORMS
    finally:
        code = processes.stop(service)
        server.close()
    assert code == 0, service.logs()
