"""Generator processes spend one model budget through Redis; a cancelled wait calls nothing.

api, scanner and generators run as real processes on real PostgreSQL, RabbitMQ and Redis; the
local model server enforces the same requests-per-minute limit herald is given, with OpenAI's
headers and 429s beyond it. (Two replicas drawing on the budget at once are
`tests/integration/test_generator_budgets.py`.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support import processes
from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import MODEL_KEY, pipeline_env
from tests.support.polling import poll
from tests.support.runs import create_project, finished, run_daily_job, seed

pytestmark = pytest.mark.e2e

TOKEN = "ghp_budget_token"
RPM = 8
PLATFORMS = ["x", "linkedin", "mastodon", "bluesky"]


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    fake = FakeGitHub(token=TOKEN)
    seed(fake, datetime.now(UTC))
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def model() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    fake = openai.FakeOpenAI(api_key=MODEL_KEY, requests_per_minute=RPM)
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def fleet_env(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    redis_budgets: tuple[str, str],
) -> dict[str, str]:
    return pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github[1].url,
        model[1].url,
        HERALD_GITHUB_TOKEN=TOKEN,
        HERALD_AI_MODEL="gpt-test",
        HERALD_AI_REQUESTS_PER_MINUTE=str(RPM),
        HERALD_REDIS_URL=redis_budgets[0],
        HERALD_REDIS_PREFIX=redis_budgets[1],
    )


def test_a_generator_waits_for_what_another_spent_and_a_cancelled_wait_calls_nothing(
    fleet_env: dict[str, str],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    fresh_database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    fake, _ = model
    with processes.running(("api", "scanner", "generator"), fleet_env, tmp_path) as fleet:
        api = processes.signed_in_client(fleet["api"], fresh_database_url)
        request.addfinalizer(api.close)
        hour = (datetime.now(UTC).hour + 12) % 24

        # One generator spends the whole minute's budget: two runs of four platforms.
        spent = [
            run_daily_job(api, create_project(api, "octo", "herald", PLATFORMS), hour)
            for _ in range(2)
        ]
        assert all(finished(api, run)["status"] == "COMPLETED" for run in spent)
        assert len(fake.accepted) == RPM and fake.rejected == 0
        assert model_calls(fleet["generator"]) == RPM

        # Another generator process takes over; it has spent nothing, yet it must wait.
        assert processes.stop(fleet.pop("generator")) == 0
        fleet["generator-2"] = processes.start(
            "generator", fleet_env, tmp_path, log_name="generator-2"
        )
        processes.wait_ready(fleet["generator-2"])
        run = run_daily_job(api, create_project(api, "octo", "herald", PLATFORMS), hour)
        waiting = poll(
            lambda: api.get(f"/api/cron/executions/{run}").json()["data"],
            lambda row: any(
                (s["step"], s["kind"]) == ("generate", "waiting") for s in row["steps"]
            ),
        )
        assert waiting["status"] == "RUNNING"
        time.sleep(2)
        assert len(fake.calls) == RPM  # none of its four calls went

        # Cancelled while waiting: nothing more reaches the model.
        assert api.post(f"/api/cron/executions/{run}/cancel").status_code == 200
        assert finished(api, run)["status"] == "CANCELLED"
        time.sleep(2)
        assert len(fake.calls) == RPM and fake.rejected == 0
        assert model_calls(fleet["generator-2"]) == 0
        assert "shared (Redis)" in fleet["generator-2"].logs()
        ready = httpx.get(f"{fleet['generator-2'].url}/readyz", timeout=5).json()
        assert ready["advisory"] == {"redis": True}


def model_calls(service: processes.Service) -> float:
    """Model requests a generator process made, from its own metrics."""
    text = httpx.get(f"{service.url}/metrics", timeout=5).text
    prefix = 'herald_ai_request_seconds_count{provider="openai"} '
    return sum(
        float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)
    )
