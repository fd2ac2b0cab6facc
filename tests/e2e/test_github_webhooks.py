"""GitHub webhook triggers end to end: api, scanner and generator as real processes on
RabbitMQ and PostgreSQL, a local GitHub server and a local OpenAI-compatible one.

A signed push delivery runs the job that waits for it, over the pushed commits, to the end;
the same delivery again runs nothing. A signed release delivery runs it over the commits since
the previous published release, and its posts name that release.
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
from tests.support.fakes.github import FakeGitHub, commit, release
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import pipeline_env
from tests.support.runs import create_project, finished

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    env = pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github[1].url,
        model[1].url,
        HERALD_SECRET_KEY=generate_key(),
    )
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


def test_a_signed_release_runs_its_job_over_the_commits_since_the_previous_release(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    hours = [now - timedelta(hours=n) for n in (10, 8, 6, 4, 2)]
    shas = [f"{n}" * 40 for n in range(1, 6)]
    previous, published = hours[1] + timedelta(minutes=5), hours[3] + timedelta(minutes=5)
    github[0].add_repo(
        "octo",
        "shipping",
        commits=[
            commit(shas[0], "feat: first steps", hours[0]),
            commit(shas[1], "fix: v1 polish", hours[1]),
            commit(shas[2], "feat: faster sync", hours[2]),
            commit(shas[3], "fix: release notes", hours[3]),
            commit(shas[4], "feat: after the release", hours[4]),
        ],
        tags={"v1.0.0": shas[1], "v1.1.0-rc1": shas[2], "v1.1.0": shas[3]},
        releases=[
            release("v1.0.0", previous, name="One"),
            release("v1.1.0-rc1", hours[2] + timedelta(minutes=5), prerelease=True),
            release("v1.1.0", published, name="Sync"),
        ],
    )
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project_id = create_project(api, "octo", "shipping", ["x"])
    made = api.post(f"/api/projects/{project_id}/github-webhook-secret")
    assert made.status_code == 201, made.text
    secret, url = made.json()["data"]["secret"], made.json()["data"]["payloadUrl"]
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": "on release",
            "frequency": "DAILY",
            "timeConfig": {"hour": (now.hour + 12) % 24, "minute": 0},
            "webhookTriggers": [{"event": "release", "tags": ["v*"]}],
        },
    )
    assert job.status_code == 201, job.text

    body = json.dumps(
        {
            "action": "published",
            "release": {
                "tag_name": "v1.1.0",
                "name": "Sync",
                "body": "Sync is twice as fast.",
                "html_url": "https://github.com/octo/shipping/releases/tag/v1.1.0",
                "published_at": published.isoformat().replace("+00:00", "Z"),
                "draft": False,
                "prerelease": False,
            },
            "repository": {"full_name": "octo/shipping", "default_branch": "main"},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "release",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_of(secret, body),
    }
    target = httpx.URL(url).copy_with(host="127.0.0.1", port=pipeline["api"].port)
    with httpx.Client(timeout=10) as hook:
        delivered = hook.post(target, content=body, headers=headers)
    assert delivered.status_code == 200, delivered.text
    [fired] = delivered.json()["data"]["executions"]
    run = finished(api, fired["executionId"])
    assert (run["trigger"], run["status"]) == ("WEBHOOK", "COMPLETED"), run
    # From the previous full release (not the pre-release) to this one.
    assert run["windowStart"] == previous.isoformat().replace("+00:00", "Z")
    assert run["windowEnd"] == published.isoformat().replace("+00:00", "Z")
    assert run["metadata"]["githubRelease"] == "v1.1.0"
    assert run["metadata"]["githubPreviousRelease"] == "v1.0.0"
    # The two commits after v1.0.0 up to v1.1.0: not the one before, nor the one after.
    assert run["metadata"]["activity"]["commits"] == 2
    [call] = model[0].calls
    prompt = next(m["content"] for m in call.body["messages"] if m["role"] == "user")
    assert "Announce release: Sync (v1.1.0), the changes since v1.0.0" in prompt
    assert "feat: faster sync" in prompt and "fix: release notes" in prompt
    assert "v1 polish" not in prompt and "after the release" not in prompt
    [post] = api.get(f"/api/cron/executions/{fired['executionId']}/content").json()["data"]
    assert "v1.1.0" in post["body"], post
