"""GitHub activity in, model-written posts out: api, scanner and generator as real processes.

The scanner talks to a local GitHub server (HERALD_GITHUB_API_URL), the generator to a local
OpenAI-compatible server. Both rate-limit once: the scan and one platform wait for the budget
(no failure, no retry spent), and one platform fails once and goes round the broker's delay
ladder before the execution completes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import processes
from tests.support.fakes import anthropic, openai
from tests.support.fakes.github import FakeGitHub, Limited
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import GITHUB_TOKEN, pipeline_env
from tests.support.runs import create_project, finished, run_daily_job, seed, trigger
from tests.support.sql import query
from tests.support.trap import SECRET_BODY, Trap

pytestmark = pytest.mark.e2e


def start_pipeline(env: dict[str, str], logs: Path) -> Iterator[dict[str, processes.Service]]:
    with processes.running(("api", "scanner", "generator"), env, logs) as services:
        yield services


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
        # Any wait goes through the delay ladder, so the per-platform retry is exercised.
        HERALD_AI_RETRY_MAX_WAIT="0",
    )
    yield from start_pipeline(env, tmp_path)


@pytest.fixture
def claude_pipeline(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    claude: tuple[anthropic.FakeAnthropic, ThreadedServer],
) -> Iterator[dict[str, processes.Service]]:
    env = pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github[1].url,
        claude[1].url,
        HERALD_AI_PROVIDER="anthropic",
        HERALD_AI_API_KEY="sk-ant-test",
        HERALD_AI_MODEL=None,
    )
    yield from start_pipeline(env, tmp_path)


@pytest.fixture
def claude() -> Iterator[tuple[anthropic.FakeAnthropic, ThreadedServer]]:
    fake = anthropic.FakeAnthropic()
    server = fake.serve()
    yield fake, server
    server.close()


def test_github_activity_becomes_model_written_posts_through_retries(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    now = datetime.now(UTC)
    seed(github[0], now)
    github[0].limited.append(Limited(status=403, secondary=True, retry_after=1))
    model[0].scripts.update(
        x=['{"body": "octo/herald shipped weekly digests and 120 fixes."}'],
        blog=[openai.Failure(429, "rate_limit_exceeded", retry_after=1, message="slow down")],
        changelog=[
            openai.Failure(503, None, message="busy"),
            '{"title": "Changes", "body": "## Changes\\n\\n### Added\\n- Weekly digests"}',
        ],
    )
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    execution_id = trigger(api, "octo", "herald", ["x", "blog", "changelog"], (now.hour + 12) % 24)

    execution = finished(api, execution_id)

    assert execution["status"] == "COMPLETED", execution
    assert (execution["itemsProcessed"], execution["itemsSuccess"]) == (3, 3)
    activity = execution["metadata"]["activity"]
    assert (activity["commits"], activity["pullRequests"], activity["issues"]) == (120, 1, 1)
    assert execution["metadata"]["githubApiCalls"] == 3  # 2 commit pages, issues with the pulls
    assert execution["metadata"]["aiTokens"]["prompt"] > 0
    posts = {post["platform"]: post for post in execution["content"]}
    assert posts["x"]["body"] == "octo/herald shipped weekly digests and 120 fixes."
    assert posts["x"]["model"] == "gpt-e2e"
    assert posts["changelog"]["title"] == "Changes"
    assert posts["blog"]["status"] == "GENERATED"
    assert all(post["promptTokens"] > 0 for post in posts.values())
    # The scan waited out the secondary limit, the blog post its 429 (every replica paused),
    # both as no try; the changelog's 503 was a failure, retried on its own next attempt.
    kinds = [(s["step"], s["kind"], s["attempt"]) for s in execution["steps"]]
    assert ("scan", "waiting", 1) in kinds and ("generate", "waiting", 1) in kinds, kinds
    failed = [(step, attempt) for step, kind, attempt in kinds if kind == "failed"]
    assert failed == [("generate", 1)]
    assert execution["attempt"] == 2
    assert len(model[0].calls) == 5  # x, blog twice, changelog twice
    paths = github[0].paths()
    assert "/repositories/1000/commits" in paths  # Link pagination followed verbatim


def test_an_empty_repository_completes_with_no_posts_and_no_model_call(
    claude_pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    claude: tuple[anthropic.FakeAnthropic, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    github[0].add_repo("octo", "fresh", empty=True)
    api = processes.signed_in_client(claude_pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    hour = (datetime.now(UTC).hour + 12) % 24

    execution = finished(api, trigger(api, "octo", "fresh", ["x"], hour))

    assert execution["status"] == "COMPLETED", execution
    assert execution["itemsProcessed"] == 0
    assert execution["content"] == []
    assert claude[0].calls == []
    assert github[0].requests[0].status == 409


def test_an_anthropic_model_writes_the_posts_and_a_quota_error_fails_one_platform(
    claude_pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    claude: tuple[anthropic.FakeAnthropic, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    now = datetime.now(UTC)
    seed(github[0], now)
    claude[0].scripts.update(
        x=[anthropic.OVERLOADED, '{"body": "Weekly digests landed."}'],
        mastodon=[anthropic.SPEND_LIMIT],
    )
    api = processes.signed_in_client(claude_pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)

    execution = finished(
        api, trigger(api, "octo", "herald", ["x", "mastodon"], (now.hour + 12) % 24)
    )

    assert execution["status"] == "COMPLETED", execution
    assert (execution["itemsSuccess"], execution["itemsFailed"]) == (1, 1)
    posts = {post["platform"]: post for post in execution["content"]}
    assert posts["x"]["body"] == "Weekly digests landed."
    assert posts["x"]["model"] == "claude-3-5-haiku-latest"
    assert posts["mastodon"]["status"] == "FAILED"
    assert "enforced_spend_limit_reached" in posts["mastodon"]["error"]
    assert claude[0].calls[0].headers["anthropic-version"] == "2023-06-01"


def test_no_project_can_aim_the_scanner_or_its_token_at_an_address_of_its_choosing(
    pipeline: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    trap = Trap()
    request.addfinalizer(trap.close)
    api = processes.signed_in_client(pipeline["api"], fresh_database_url)
    request.addfinalizer(api.close)
    project = {"name": "p", "githubRepoOwner": "octo", "githubRepoName": "secret-repo"}
    for url in (
        f"{trap.origin}/api/v3",
        "http://169.254.169.254/latest/meta-data",
        f"http://localhost:{trap.port}/",
        f"http://[::1]:{trap.port}/api",
        "http://127.0.0.1:5432/",
    ):
        refused = api.post("/api/projects", json={**project, "githubBaseUrl": url})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "githubBaseUrl"

    # A project whose base URL was stored before the rule existed: its run fails, saying why.
    project_id = create_project(api, "octo", "secret-repo", ["x"])
    query(
        fresh_database_url,
        "UPDATE projects SET github_base_url = :url WHERE id = :id",
        {"url": f"{trap.origin}/api/v3", "id": project_id},
    )
    execution_id = run_daily_job(api, project_id, (datetime.now(UTC).hour + 12) % 24)

    execution = finished(api, execution_id)

    assert execution["status"] == "FAILED", execution
    assert "must be on a host this server allows" in execution["errorMessage"]
    # Refused for good at the first attempt: nothing to retry.
    scans = [(s["kind"], s["attempt"]) for s in execution["steps"] if s["step"] == "scan"]
    assert scans == [("started", 1), ("failed", 1)]
    assert trap.received == []
    assert SECRET_BODY.decode() not in str(execution)
    assert GITHUB_TOKEN not in str(execution)
    assert github[0].requests == [] and model[0].calls == []
