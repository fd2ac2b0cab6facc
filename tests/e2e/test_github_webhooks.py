"""GitHub webhook triggers end to end: api, scanner and generator as real processes on
RabbitMQ and PostgreSQL, a local GitHub server and a local OpenAI-compatible one.

A signed push delivery runs the job that waits for it, over the pushed commits, to the end;
the same delivery again runs nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from shared.secrets import generate_key
from shared.signatures import signature_of
from tests.support import processes
from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub, commit
from tests.support.fakes.server import ThreadedServer
from tests.support.runs import create_project, finished

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2e_token"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def model() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    fake = openai.FakeOpenAI(api_key="sk-e2e")
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
        "HERALD_SECRET_KEY": generate_key(),
        "HERALD_GITHUB_API_URL": github[1].url,
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        "HERALD_GITHUB_TOKEN": TOKEN,
        "HERALD_AI_PROVIDER": "openai",
        "HERALD_AI_BASE_URL": model[1].url,
        "HERALD_AI_API_KEY": "sk-e2e",
        "HERALD_AI_MODEL": "gpt-e2e",
    }
    with processes.running(("api", "scanner", "generator"), env, tmp_path) as services:
        yield services


def test_a_signed_push_runs_its_job_over_the_pushed_commits(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pushed = now - timedelta(minutes=30)
    github[0].add_repo(
        "octo",
        "pushy",
        commits=[
            commit("1" * 40, "feat: webhooks", pushed, files=["src/hooks.py"]),
            commit("2" * 40, "fix: signature", pushed + timedelta(minutes=5)),
        ],
    )
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project_id = create_project(api, "octo", "pushy", ["x"])
    made = api.post(f"/api/projects/{project_id}/github-webhook-secret")
    assert made.status_code == 201, made.text
    secret, url = made.json()["data"]["secret"], made.json()["data"]["payloadUrl"]
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": "on push",
            "frequency": "DAILY",
            "timeConfig": {"hour": (now.hour + 12) % 24, "minute": 0},
            "webhookTriggers": [{"event": "push"}],
        },
    )
    assert job.status_code == 201, job.text

    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "deleted": False,
            "commits": [
                {"id": "1" * 40, "timestamp": pushed.isoformat()},
                {"id": "2" * 40, "timestamp": (pushed + timedelta(minutes=5)).isoformat()},
            ],
            "repository": {"full_name": "octo/pushy", "default_branch": "main"},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_of(secret, body),
    }
    # As GitHub would: no herald credential, the URL herald gave (its host and port those of
    # this test's api process rather than HERALD_PUBLIC_URL's).
    target = httpx.URL(url).copy_with(host="127.0.0.1", port=pipeline["api"].port)
    with httpx.Client(timeout=10) as hook:
        delivered = hook.post(target, content=body, headers=headers)
        assert delivered.status_code == 200, delivered.text
        [fired] = delivered.json()["data"]["executions"]
        run = finished(api, fired["executionId"])
        assert (run["trigger"], run["status"]) == ("WEBHOOK", "COMPLETED"), run
        assert run["windowStart"] == pushed.isoformat().replace("+00:00", "Z")
        assert run["metadata"]["githubEvent"] == "push"
        assert model[0].calls, "the run wrote its posts"

        again = hook.post(target, content=body, headers=headers)
        assert again.json()["data"] == {
            "event": "push",
            "delivery": headers["X-GitHub-Delivery"],
            "duplicate": True,
            "executions": [],
        }
    listed = api.get("/api/cron/executions", params={"jobId": job.json()["data"]["id"]})
    assert [item["trigger"] for item in listed.json()["data"]] == ["WEBHOOK"]
