"""How an execution ends when its steps fail, hang, are cancelled or lose their process.

Api, scanner and generator run as real processes against a local GitHub server and a local
OpenAI-compatible server, which a test can make fail, hang or hold. Retries use a one-second
retry delay, so they go round the broker's shortest delay step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import processes
from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub, commit
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import pipeline_env
from tests.support.polling import poll

pytestmark = pytest.mark.e2e

TOKEN = "ghp_outcomes_token"
PLATFORMS = ["x", "changelog"]
SERVICES = ("api", "scanner", "generator")


@pytest.fixture
def github_server() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    recent = datetime.now(UTC) - timedelta(hours=1)
    fake.add_repo(
        "octo",
        "herald",
        commits=[
            commit(f"{n:040x}", f"fix: case {n}", recent + timedelta(seconds=n)) for n in (1, 2)
        ],
    )
    server = fake.serve()
    yield fake, server
    fake.hang = False
    server.close()


@pytest.fixture
def github(github_server: tuple[FakeGitHub, ThreadedServer]) -> FakeGitHub:
    return github_server[0]


@pytest.fixture
def model() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    fake = openai.FakeOpenAI(api_key="sk-outcomes")
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github_server: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    """The three services; a test that kills one puts its replacement in the dict."""
    env = pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github_server[1].url,
        model[1].url,
        HERALD_GITHUB_TOKEN=TOKEN,
        HERALD_AI_API_KEY="sk-outcomes",
        HERALD_AI_MODEL="gpt-outcomes",
        # The sweeper looks every second and times a run out as soon as its deadline passes.
        HERALD_API_SWEEP_INTERVAL="1",
        HERALD_API_SWEEP_GRACE="0",
    )
    with processes.running(SERVICES, env, tmp_path) as services:
        yield services


@pytest.fixture
def api(pipeline: dict[str, processes.Service], fresh_database_url: str) -> Iterator[httpx.Client]:
    with processes.signed_in_client(pipeline["api"], fresh_database_url) as client:
        yield client


def trigger(api: httpx.Client, *, repo: str = "herald", **job: Any) -> str:
    """Create a project and a daily job on it (with `job`'s settings); trigger it."""
    project = api.post(
        "/api/projects",
        json={
            "name": repo,
            "githubRepoOwner": "octo",
            "githubRepoName": repo,
            "platforms": PLATFORMS,
        },
    )
    assert project.status_code == 201, project.text
    created = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project.json()["data"]["id"],
            "name": "Daily digest",
            "frequency": "DAILY",
            "timeConfig": {"hour": (datetime.now(UTC).hour + 12) % 24, "minute": 0},
            "retryDelay": 1,
            **job,
        },
    )
    assert created.status_code == 201, created.text
    triggered = api.post("/api/cron/trigger", json={"jobId": created.json()["data"]["id"]})
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


def steps(data: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(s["step"], s["kind"], s["attempt"]) for s in data["steps"]]


def started_scan(api: httpx.Client, execution_id: str) -> None:
    poll(
        lambda: steps(execution(api, execution_id)),
        lambda found: ("scan", "started", 1) in found,
        timeout=30,
    )


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stays(api: httpx.Client, execution_id: str, status: str) -> dict[str, Any]:
    """Give late events time to land; the execution must not have moved."""
    time.sleep(2)
    data = execution(api, execution_id)
    assert data["status"] == status, data
    return data


def test_a_scan_that_keeps_failing_is_retried_with_backoff_then_fails_for_good(
    api: httpx.Client, github: FakeGitHub
) -> None:
    github.failures = [502] * 10
    execution_id = trigger(api, maxRetries=2)

    done = finished(api, execution_id)

    assert done["status"] == "FAILED", done
    assert "502" in (done["errorMessage"] or ""), done
    failures = [s for s in done["steps"] if (s["step"], s["kind"]) == ("scan", "failed")]
    assert [(s["step"], s["attempt"]) for s in failures] == [("scan", 1), ("scan", 2), ("scan", 3)]
    # Each retry waited out its backoff (the retry delay, 1 s, then 2 s) in the delay ladder;
    # the bound is loose because the api records each step when it applies the event.
    started = {
        s["attempt"]: s["at"]
        for s in done["steps"]
        if (s["step"], s["kind"]) == ("scan", "started")
    }
    for failure in failures[:-1]:
        waited = at(started[failure["attempt"] + 1]) - at(failure["at"])
        assert waited >= timedelta(seconds=0.5), (failure, started)
    assert len(github.requests) == 3  # one per attempt: the first request fails each time
    assert done["content"] == []
    stays(api, execution_id, "FAILED")


def test_an_unknown_repository_fails_on_the_first_attempt_without_retrying(
    api: httpx.Client, github: FakeGitHub
) -> None:
    execution_id = trigger(api, repo="missing", maxRetries=3)

    done = finished(api, execution_id)

    assert done["status"] == "FAILED", done
    assert [(step, kind, attempt) for step, kind, attempt in steps(done) if kind == "failed"] == [
        ("scan", "failed", 1),
        ("execution", "failed", 1),
    ]
    assert [seen.status for seen in github.requests] == [404]
    stays(api, execution_id, "FAILED")
    assert len(github.requests) == 1


def test_a_run_no_scanner_takes_in_time_times_out_and_never_runs_late(
    pipeline: dict[str, processes.Service], api: httpx.Client, github: FakeGitHub
) -> None:
    assert processes.kill(pipeline["scanner"]) == -9
    execution_id = trigger(api, timeoutSeconds=10)

    done = finished(api, execution_id, timeout=40)

    assert done["status"] == "TIMEOUT", done
    # The scanner returns to a job.due past its deadline: it drops it and calls no one.
    pipeline["scanner"] = processes.restart(pipeline["scanner"])
    processes.wait_ready(pipeline["scanner"])
    poll(
        lambda: pipeline["scanner"].logs(),
        lambda logs: "step skipped: past its deadline" in logs,
        timeout=20,
    )
    data = stays(api, execution_id, "TIMEOUT")
    assert data["content"] == []
    assert github.requests == []
    statistics = api.get(f"/api/cron/schedules/{data['jobId']}/statistics").json()["data"]
    assert statistics["totalFailures"] == 1, statistics


def test_cancelling_a_running_scan_ends_it_cancelled_with_nothing_generated(
    api: httpx.Client, github: FakeGitHub, model: tuple[openai.FakeOpenAI, ThreadedServer]
) -> None:
    github.hang = True
    execution_id = trigger(api, maxRetries=3)
    started_scan(api, execution_id)

    cancelled = api.post(f"/api/cron/executions/{execution_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "CANCELLED"
    time.sleep(1)  # the cancellation reaches the scanner's in-memory set
    github.hang = False

    data = stays(api, execution_id, "CANCELLED")
    assert data["content"] == []
    assert model[0].calls == []  # the generator was never asked
    # The held request is answered; the scanner makes no further one for a cancelled run.
    assert len(github.requests) == 1, github.paths()


def test_a_generator_killed_mid_generation_is_redelivered_and_writes_each_post_once(
    pipeline: dict[str, processes.Service],
    api: httpx.Client,
    model: tuple[openai.FakeOpenAI, ThreadedServer],
) -> None:
    fake, _ = model
    arrived, release = threading.Event(), threading.Event()
    answer = fake.reply

    def held(system: str, user: str) -> str:
        if not arrived.is_set():  # hold only the first call, the one the dying process made
            arrived.set()
            release.wait(30)
        return answer(system, user)

    fake.reply = held
    execution_id = trigger(api, maxRetries=3)
    assert arrived.wait(60), pipeline["generator"].logs()

    assert processes.kill(pipeline["generator"]) == -9
    release.set()
    pipeline["generator"] = processes.restart(pipeline["generator"])
    processes.wait_ready(pipeline["generator"])

    done = finished(api, execution_id)
    assert done["status"] == "COMPLETED", done
    assert sorted(post["platform"] for post in done["content"]) == sorted(PLATFORMS)
    assert (done["itemsSuccess"], done["itemsFailed"]) == (2, 0)
    completed = [s for s in done["steps"] if (s["step"], s["kind"]) == ("execution", "completed")]
    assert len(completed) == 1, done["steps"]
    data = stays(api, execution_id, "COMPLETED")
    assert len(data["content"]) == len(PLATFORMS)
    assert len(fake.calls) > len(PLATFORMS)  # the killed process's calls, then the new one's
