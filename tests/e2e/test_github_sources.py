"""GitHub as a multi-user source, with api, scanner and generator as real processes.

A renamed repository is followed and the project takes its new name; projects on GitHub App
installations scan with their own installation's token and spend their own rate budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import processes
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import ThreadedServer
from tests.support.runs import create_project, finished, run_daily_job, seed

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2e_token"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(tmp_path),
        "HERALD_GITHUB_API_URL": github[1].url,
        "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
        "HERALD_GITHUB_TOKEN": TOKEN,
    }
    with processes.running(("api", "scanner", "generator"), env, tmp_path) as services:
        yield services


def test_a_renamed_repository_is_scanned_and_the_project_takes_its_new_name(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    now = datetime.now(UTC)
    seed(github[0], now)
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project_id = create_project(api, "octo", "herald", ["x"])
    github[0].move(github[0].repos[1000], "octo-org", "herald-next")

    execution = finished(api, run_daily_job(api, project_id, (now.hour + 12) % 24))

    assert execution["status"] == "COMPLETED", execution
    assert execution["metadata"]["activity"]["commits"] == 120
    moved = [step for step in execution["steps"] if step["kind"] == "moved"]
    assert len(moved) == 1 and "octo-org/herald-next" in moved[0]["detail"]
    project = api.get(f"/api/projects/{project_id}").json()["data"]
    assert (project["githubRepoOwner"], project["githubRepoName"]) == ("octo-org", "herald-next")
    alerts = api.get("/api/notifications").json()["data"]
    assert [alert["title"] for alert in alerts if "moved" in alert["title"]] == [
        "herald: repository moved to octo-org/herald-next"
    ]
    # The post names the repository as it is now called.
    assert "octo-org/herald-next" in execution["content"][0]["body"]
    assert github[0].requests[0].status == 301
