"""Run conditions end to end: api, scanner and generator as real processes on RabbitMQ and
PostgreSQL, a local GitHub server and a local OpenAI-compatible one.

A week with too little activity ends SKIPPED with the reason and no model request; the next
run's window opens where the skipped one ended, or, for a job that accumulates, where it
started.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import processes
from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub, commit, pull
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
        fresh_database_url, fresh_amqp_url, str(tmp_path), github[1].url, model[1].url
    )
    with processes.running(("api", "scanner", "generator"), env, tmp_path) as services:
        yield services


def seed(github: FakeGitHub, now: datetime) -> None:
    """A quiet week: two commits in src/, one in docs/ only, a bot's bump, a chore merge."""
    recent = now - timedelta(hours=1)
    github.add_repo(
        "octo",
        "quiet",
        commits=[
            commit("1" * 40, "fix: parser", recent, files=["src/parser.py"]),
            commit("2" * 40, "feat: flag", recent, files=["src/cli.py", "docs/cli.md"]),
            commit("3" * 40, "docs: typo", recent, files=["docs/index.md"]),
            commit("4" * 40, "chore(deps): bump", recent, "dependabot[bot]", files=["src/x"]),
        ],
        pulls=[
            pull(7, "Tidy CI", updated=recent, merged=recent, labels=("chore",)),
            pull(8, "Bump lib", updated=recent, merged=recent, login="renovate[bot]"),
        ],
    )


def new_job(api: httpx.Client, project_id: str, name: str, **conditions: Any) -> str:
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "name": name,
            "frequency": "DAILY",
            "timeConfig": {"hour": (datetime.now(UTC).hour + 12) % 24, "minute": 0},
            "conditions": {
                "minCommits": 5,
                "minPullRequests": 1,
                "includePaths": ["src/**"],
                "excludeLabels": ["chore"],
                **conditions,
            },
        },
    )
    assert job.status_code == 201, job.text
    return str(job.json()["data"]["id"])


def run(api: httpx.Client, job_id: str) -> dict[str, Any]:
    triggered = api.post("/api/cron/trigger", json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    return finished(api, str(triggered.json()["data"]["id"]))


REASON = "2 commits, fewer than the 5 required; 0 merged pull requests, fewer than the 1 required"


def test_a_quiet_week_is_skipped_with_its_reason_and_no_model_request(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    seed(github[0], datetime.now(UTC))
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project_id = create_project(api, "octo", "quiet", ["x", "blog"])
    job_id = new_job(api, project_id, "moves on")
    keeping_id = new_job(api, project_id, "accumulates", accumulate=True)

    first = run(api, job_id)

    assert first["status"] == "SKIPPED", first
    assert first["skipReason"] == REASON
    assert first["errorMessage"] is None and first["content"] == []
    steps = [(step["step"], step["kind"], step["detail"]) for step in first["steps"]]
    assert ("conditions", "unmet", REASON) in steps
    # Only the bot's commit went unasked: its paths could not change the count.
    commit_pages = [p for p in github[0].paths() if "/commits/" in p]
    assert sorted(page.rsplit("/", 1)[1][0] for page in commit_pages) == ["1", "2", "3"]
    assert model[0].calls == []

    second = run(api, job_id)
    assert second["status"] == "SKIPPED"
    assert second["windowStart"] == first["windowEnd"]

    kept_first = run(api, keeping_id)
    kept_second = run(api, keeping_id)
    assert (kept_first["status"], kept_second["status"]) == ("SKIPPED", "SKIPPED")
    assert kept_second["windowStart"] == kept_first["windowStart"]
    assert kept_second["windowStart"] < kept_first["windowEnd"]

    statistics = api.get("/api/cron/executions", params={"jobId": job_id, "stats": True}).json()
    counted = statistics["statistics"]
    assert (counted["totalSkipped"], counted["totalRuns"]) == (2, 0)
    assert model[0].calls == []
