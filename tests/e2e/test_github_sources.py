"""GitHub as a multi-user source, with api, scanner and generator as real processes.

A renamed repository is followed and the project takes its new name; projects on GitHub App
installations granted to their owner scan with their own installation's token and spend their
own rate budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.secrets import generate_key
from tests.support import processes
from tests.support.fakes.github import FakeGitHub, commit
from tests.support.fakes.github_app import FakeApp
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import GITHUB_TOKEN, pipeline_env
from tests.support.runs import create_project, finished, run_daily_job, seed

pytestmark = pytest.mark.e2e

APP_ID = "4242"
APP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=GITHUB_TOKEN)
    public = APP_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.app = FakeApp(APP_ID, public)
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    redis_budgets: tuple[str, str],
) -> Iterator[dict[str, processes.Service]]:
    private = APP_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    env = pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github[1].url,
        None,
        HERALD_GITHUB_APP_ID=APP_ID,
        # As an operator may put a PEM in one line of an env file.
        HERALD_GITHUB_APP_PRIVATE_KEY=private.replace("\n", "\\n"),
        HERALD_SECRET_KEY=generate_key(),
        # Budgets and pauses shared through Redis, as the fleet keeps them.
        HERALD_REDIS_URL=redis_budgets[0],
        HERALD_REDIS_PREFIX=redis_budgets[1],
    )
    with processes.running(("api", "scanner", "generator"), env, tmp_path) as services:
        yield services


def operator(database_url: str, *args: str) -> str:
    """Run `herald ARGS` on the stack's database, as its operator would; its output."""
    done = subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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
    # The post names the repository as it is now called (the writer leads with its name).
    assert execution["content"][0]["body"].startswith("herald-next ")
    assert github[0].requests[0].status == 301


def test_two_projects_on_two_installations_each_spend_their_own_budget(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    fake = github[0]
    assert fake.app is not None
    now = datetime.now(UTC)
    for name in ("busy", "quiet"):
        fake.add_repo(
            "octo",
            name,
            commits=[
                commit(f"{n:040x}", f"fix: {name} {n}", now - timedelta(hours=1, seconds=n))
                for n in range(5)
            ],
        )
    # The busy project's installation is nearly spent (its reset is set just before the runs,
    # a few seconds away: its scan waits for it). The quiet one's is whole.
    busy = fake.app.install("octo", {1000}, limit=50)
    quiet = fake.app.install("octo", {1001})
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    busy_project = create_project(api, "octo", "busy", ["x"])
    quiet_project = create_project(api, "octo", "quiet", ["x"])
    ungranted = api.patch(f"/api/projects/{busy_project}", json={"githubInstallationId": busy.id})
    assert ungranted.status_code == 422, ungranted.text
    email = api.get("/api/me").json()["data"]["email"]
    for project_id, installation in ((busy_project, busy), (quiet_project, quiet)):
        granted = operator(
            fresh_database_url,
            *("installations", "grant", "--installation", str(installation.id)),
            *("--email", email),
        )
        assert granted == f"granted installation {installation.id} to {email}\n"
        connected = api.patch(
            f"/api/projects/{project_id}", json={"githubInstallationId": installation.id}
        )
        assert connected.status_code == 200, connected.text
    hour = (now.hour + 12) % 24

    busy.budget.reset = int(time.time()) + 6
    busy_run = run_daily_job(api, busy_project, hour)
    quiet_run = run_daily_job(api, quiet_project, hour)
    quiet_done = finished(api, quiet_run)
    busy_done = finished(api, busy_run)

    assert (quiet_done["status"], busy_done["status"]) == ("COMPLETED", "COMPLETED")
    assert (
        busy_done["metadata"]["activity"]["commits"],
        quiet_done["metadata"]["activity"]["commits"],
    ) == (5, 5)
    # The busy installation's pause held its own project's scan, not the other's.
    assert any(s["kind"] == "waiting" for s in busy_done["steps"]), busy_done["steps"]
    assert not any(s["kind"] == "waiting" for s in quiet_done["steps"]), quiet_done["steps"]
    assert quiet_done["completedAt"] < busy_done["completedAt"]
    # Each installation's budget was spent by its own project alone, the server's token not at all.
    assert busy.budget.remaining == 50 - 2
    assert quiet.budget.remaining == quiet.budget.limit - 2
    assert fake.remaining == fake.limit
    assert sorted(fake.app.minted) == sorted([busy.id, quiet.id])
    shown = {
        project_id: api.get(f"/api/projects/{project_id}").json()["data"]
        for project_id in (busy_project, quiet_project)
    }
    assert shown[busy_project]["githubCredential"] == "app"
    assert shown[quiet_project]["githubCredential"] == "app"
    assert shown[busy_project]["githubRateLimit"]["limit"] == 50
    assert shown[busy_project]["githubRateLimit"]["remaining"] == 48
    assert shown[quiet_project]["githubRateLimit"]["limit"] == quiet.budget.limit
    # No token reached the api's answers or the execution records.
    for token in fake.app.tokens:
        assert token not in str(shown) and token not in str(busy_done)
