"""The GitHub client and scan against a local server that speaks GitHub's REST protocol."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scanner.budget import GitHubBudget, credential_key
from services.scanner.github import MAX_PATH_LOOKUPS, ETagCache
from services.scanner.scan import GitHubAccess, ScanResult, scan
from shared.budgets import Budgets
from shared.cancellation import CancelledSet, ExecutionCancelledError
from shared.errors import (
    BudgetExhaustedError,
    ConfigurationError,
    PermanentError,
    TransientError,
)
from shared.events import JobDue, RunConditions
from shared.outbound import guarded_client, parse_networks
from shared.retry import Drawn
from tests.support.factories import scan_due
from tests.support.fakes.github import (
    ABUSE_MESSAGE,
    SECONDARY_MESSAGE,
    FakeGitHub,
    Limited,
    commit,
    issue,
    pull,
)

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 8, tzinfo=UTC)
TOKEN = "ghp_test_token"
LOOPBACK = parse_networks(["127.0.0.1/32"])


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=TOKEN)
    server = fake.serve()
    fake.base_url = server.url  # type: ignore[attr-defined]
    yield fake
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The scanner's own client: the outbound guard, with the fake's loopback address allowed.
    async with guarded_client(LOOPBACK, timeout=httpx.Timeout(5.0, read=1.0)) as client:
        yield client


async def run_scan(
    github: FakeGitHub,
    http: httpx.AsyncClient,
    event: JobDue | None = None,
    *,
    etags: ETagCache | None = None,
    seconds: float = 30.0,
    base_url: str | None = None,
) -> ScanResult:
    return await scan(
        event or scan_due(),
        http=http,
        github=GitHubAccess.of(base_url or github.base_url, TOKEN),  # type: ignore[attr-defined]
        local_repos_root="/nonexistent",
        etags=etags,
        scan_seconds=seconds,
    )


def busy_repo(github: FakeGitHub, commits: int = 250) -> None:
    github.add_repo(
        "octo",
        "repo",
        commits=[
            commit(f"{n:040x}", f"Change {n}\n\nbody", START + timedelta(minutes=n + 1))
            for n in range(commits)
        ]
        + [commit("f" * 40, "Too old", START), commit("e" * 40, "Too new", END + timedelta(1))],
        pulls=[
            pull(
                1,
                "feat: add digest",
                updated=START + timedelta(days=1),
                merged=START + timedelta(1),
            ),
            pull(2, "Closed unmerged", updated=START + timedelta(days=2), merged=None),
            pull(
                3,
                "Merged before the window",
                updated=START + timedelta(days=2),
                merged=START - timedelta(days=1),
            ),
            pull(
                4,
                "fix!: drop Python 3.10",
                updated=START + timedelta(days=3),
                merged=START + timedelta(days=3),
                login="zoe",
                labels=("breaking",),
            ),
        ]
        + [
            pull(100 + n, f"Old {n}", updated=START - timedelta(days=n + 1), merged=None)
            for n in range(150)
        ],
        issues=[
            issue(7, "Crash on start", closed=START + timedelta(days=2), labels=("bug",)),
            issue(8, "Closed before", closed=START - timedelta(1), updated=START + timedelta(1)),
        ],
    )


async def test_a_scan_collects_commits_merged_pulls_and_closed_issues_in_the_window(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)

    result = await run_scan(github, http)

    summary = result.summary
    assert (summary.commits, summary.pull_requests, summary.issues) == (250, 2, 1)
    pulls = {item.number for item in summary.items if item.kind == "pull_request"}
    assert pulls == {1, 4}
    assert [item.number for item in summary.items if item.kind == "issue"] == [7]
    assert summary.breaking_changes == ["fix!: drop Python 3.10"]
    assert summary.notable[0].number == 4
    assert "zoe" in summary.contributors and "bob" in summary.contributors
    assert result.github_api_calls == len(github.requests)


async def test_merged_pulls_come_from_the_issues_listing_two_requests_a_small_scan(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github, commits=5)

    result = await run_scan(github, http)

    assert (result.summary.pull_requests, result.summary.issues) == (2, 1)
    assert github.paths() == ["/repos/octo/repo/commits", "/repos/octo/repo/issues"]
    assert result.github_api_calls == 2


async def test_an_older_server_that_hides_merge_times_is_asked_for_pulls_too(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github, commits=5)
    github.issues_without_merged_at = True

    result = await run_scan(github, http)

    assert (result.summary.pull_requests, result.summary.issues) == (2, 1)
    assert github.paths()[-1] == "/repos/octo/repo/pulls"


async def test_link_pagination_is_followed_verbatim_onto_repositories_urls(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)

    await run_scan(github, http)

    commit_paths = [p for p in github.paths() if p.endswith("/commits")]
    assert commit_paths == [
        "/repos/octo/repo/commits",
        "/repositories/1000/commits",
        "/repositories/1000/commits",
    ]
    first = github.requests[0]
    assert first.query["per_page"] == "100"
    assert first.query["since"] == "2025-03-01T00:00:00Z"
    assert first.query["until"] == "2025-03-08T00:00:00Z"
    assert github.requests[2].query["page"] == "3"


async def test_requests_carry_githubs_headers(github: FakeGitHub, http: httpx.AsyncClient) -> None:
    busy_repo(github, commits=1)

    await run_scan(github, http)

    for seen in github.requests:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["accept"] == "application/vnd.github+json"
        assert seen.headers["x-github-api-version"] == "2022-11-28"
        assert seen.headers["user-agent"].startswith("herald")


async def test_pulls_are_paged_only_until_they_are_older_than_the_window(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)
    github.issues_without_merged_at = True  # pull requests are then asked for apart

    await run_scan(github, http)

    pull_requests = [s for s in github.requests if s.path.endswith("/pulls")]
    assert len(pull_requests) == 1  # 154 closed pulls, but the first page already ends older
    assert pull_requests[0].query == {
        "state": "closed",
        "sort": "updated",
        "direction": "desc",
        "per_page": "100",
    }


async def test_issues_are_asked_for_since_the_window_start_and_pull_requests_dropped(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github, commits=0)

    result = await run_scan(github, http)

    issues = next(s for s in github.requests if s.path.endswith("/issues"))
    assert issues.query["since"] == "2025-03-01T00:00:00Z"
    assert issues.query["state"] == "closed"
    assert result.summary.issues == 1


async def test_an_empty_repository_is_no_activity(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    github.add_repo("octo", "repo", empty=True)

    result = await run_scan(github, http)

    assert result.summary.is_empty
    assert github.requests[0].status == 409


async def test_a_second_scan_answered_304_costs_no_rate_limit_and_gives_the_same_result(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)
    etags = ETagCache()
    first = await run_scan(github, http, etags=etags)
    remaining = github.remaining

    second = await run_scan(github, http, etags=etags)

    assert github.remaining == remaining
    assert {s.status for s in github.requests[len(github.requests) // 2 :]} == {304}
    assert second.summary == first.summary


@pytest.mark.parametrize("status", [403, 429])
async def test_an_exhausted_primary_limit_retries_at_the_reset(
    github: FakeGitHub, http: httpx.AsyncClient, status: int
) -> None:
    busy_repo(github)
    github.reset = int(time.time()) + 600
    github.limited.append(Limited(status=status))

    with pytest.raises(TransientError, match="rate limit") as caught:
        await run_scan(github, http)

    assert caught.value.retry_after is not None
    assert 590 <= caught.value.retry_after <= 601


@pytest.mark.parametrize("status", [403, 429])
async def test_a_secondary_limit_honours_retry_after(
    github: FakeGitHub, http: httpx.AsyncClient, status: int
) -> None:
    busy_repo(github)
    github.limited.append(Limited(status=status, secondary=True, retry_after=42))

    with pytest.raises(TransientError, match="secondary rate limit") as caught:
        await run_scan(github, http)

    assert caught.value.retry_after == 42


async def test_a_secondary_limit_without_retry_after_waits_at_least_a_minute(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)
    github.limited.append(Limited(status=403, secondary=True))

    with pytest.raises(TransientError) as caught:
        await run_scan(github, http)

    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 60


@pytest.mark.parametrize("message", [SECONDARY_MESSAGE, ABUSE_MESSAGE])
async def test_secondary_limits_without_retry_after_back_off_from_a_minute(
    github: FakeGitHub, http: httpx.AsyncClient, message: str
) -> None:
    busy_repo(github, commits=5)
    now = [time.time()]
    # Jitter drawn from the middle of its range: the waits are the formula's own.
    budgets = Budgets()
    budget = GitHubBudget(budgets, reserve=0, clock=lambda: now[0], rng=Drawn(0.5))
    github.limited += [Limited(status=403, secondary=True, message=message)] * 3

    waits = []
    for _ in range(3):
        with pytest.raises(BudgetExhaustedError, match="GitHub rate limit") as caught:
            await scan(
                scan_due(),
                http=http,
                github=GitHubAccess.of(github.base_url, TOKEN),  # type: ignore[attr-defined]
                local_repos_root="/nonexistent",
                budget=budget,
            )
        waits.append(caught.value.retry_after)
        # Every replica's requests with the credential wait as long: the next scan asks not.
        paused = await budgets.paused_for(credential_key(TOKEN), now=now[0])
        assert paused == pytest.approx(caught.value.retry_after)
        now[0] += caught.value.retry_after + 1

    assert waits == [60.0, 120.0, 240.0]
    assert len(github.requests) == 3  # one refused request per scan, none while paused
    # An answer in between starts the count again.
    result = await scan(
        scan_due(),
        http=http,
        github=GitHubAccess.of(github.base_url, TOKEN),  # type: ignore[attr-defined]
        local_repos_root="/nonexistent",
        budget=budget,
    )
    assert result.summary.commits == 5
    github.limited.append(Limited(status=429, secondary=True, message=message))
    with pytest.raises(BudgetExhaustedError) as caught:
        await scan(
            scan_due(),
            http=http,
            github=GitHubAccess.of(github.base_url, TOKEN),  # type: ignore[attr-defined]
            local_repos_root="/nonexistent",
            budget=budget,
        )
    assert caught.value.retry_after == 60.0


async def test_a_limit_exhausted_mid_scan_stops_before_the_next_request(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)
    github.remaining = 1
    github.reset = int(time.time()) + 300

    # The budget is spent until its reset: the scan waits for it, which is no failure.
    with pytest.raises(BudgetExhaustedError, match="spent until its reset") as caught:
        await run_scan(github, http)

    assert len(github.requests) == 1
    assert caught.value.retry_after > 250


async def test_bad_credentials_are_permanent(github: FakeGitHub, http: httpx.AsyncClient) -> None:
    busy_repo(github)
    github.token = "another"

    with pytest.raises(PermanentError, match="GitHub 401: Bad credentials") as caught:
        await run_scan(github, http)

    assert not isinstance(caught.value, TransientError)


async def test_an_unknown_repository_is_permanent(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError, match="GitHub 404"):
        await run_scan(github, http)


async def test_a_server_error_is_transient(github: FakeGitHub, http: httpx.AsyncClient) -> None:
    busy_repo(github)
    github.failures.append(502)

    with pytest.raises(TransientError, match="GitHub 502"):
        await run_scan(github, http)


async def test_a_slow_server_hits_the_read_timeout(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github, commits=1)
    github.delay = 1.5

    with pytest.raises(TransientError, match="timed out"):
        await run_scan(github, http)


async def test_a_hanging_server_is_cut_off_by_the_scan_deadline(github: FakeGitHub) -> None:
    busy_repo(github, commits=1)
    github.hang = True

    async with httpx.AsyncClient(timeout=30) as patient:
        started = time.monotonic()
        with pytest.raises(TransientError, match="deadline"):
            await run_scan(github, patient, seconds=0.5)

    assert time.monotonic() - started < 5


async def test_an_enterprise_base_url_is_used_as_given(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)
    enterprise = f"{github.base_url}/api/v3"  # type: ignore[attr-defined]

    result = await run_scan(github, http, scan_due(base_url=enterprise))

    assert result.summary.commits == 250
    assert github.paths()[1] == "/api/v3/repositories/1000/commits"


@pytest.mark.parametrize(
    ("owner", "name"), [("octo/repo", "x"), ("octo", "a/b"), ("-octo", "repo"), ("octo", "..")]
)
async def test_a_repository_that_is_not_owner_slash_name_is_a_configuration_error(
    github: FakeGitHub, http: httpx.AsyncClient, owner: str, name: str
) -> None:
    with pytest.raises(ConfigurationError, match="not of the form owner/name"):
        await run_scan(github, http, scan_due(owner=owner, name=name))

    assert github.requests == []


@pytest.mark.parametrize("url", ["ftp://github.example/api/v3", "github.example", "file:///etc"])
async def test_a_base_url_that_is_not_http_is_a_configuration_error(
    github: FakeGitHub, http: httpx.AsyncClient, url: str
) -> None:
    with pytest.raises(ConfigurationError, match="http or https"):
        await run_scan(github, http, scan_due(base_url=url))

    assert github.requests == []


async def test_no_repository_is_a_configuration_error(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ConfigurationError, match="no repository"):
        await run_scan(github, http, scan_due(owner="", name=""))


async def test_a_cancelled_execution_makes_no_further_request(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    busy_repo(github)
    cancelled = CancelledSet()
    seen: list[int] = []

    def check() -> None:
        seen.append(1)
        if len(seen) == 2:
            cancelled.add("exe_1")
        cancelled.check("exe_1")

    with pytest.raises(ExecutionCancelledError):
        await scan(
            scan_due(),
            http=http,
            github=GitHubAccess.of(github.base_url, TOKEN),  # type: ignore[attr-defined]
            local_repos_root="/nonexistent",
            before_request=check,
        )

    assert len(github.requests) == 1


async def test_path_conditions_ask_each_commit_its_files_bounded_per_scan(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    at = START + timedelta(days=1)
    newest = [
        commit(f"{n:040x}", f"change {n}", at + timedelta(minutes=n), files=[f"docs/{n}.md"])
        for n in range(MAX_PATH_LOOKUPS)
    ]
    # Older than the bound reaches: never asked, so counted whatever they changed.
    past_bound = [commit(f"{n:040x}", "old", at - timedelta(minutes=n)) for n in (901, 902)]
    bot = commit("f" * 40, "bump", at, "dependabot[bot]", files=["src/x.py"])
    github.add_repo("octo", "repo", commits=[*newest, *past_bound, bot])
    conditions = RunConditions(min_commits=3, include_paths=["src/**"])
    event = scan_due().model_copy(update={"conditions": conditions})

    result = await run_scan(github, http, event)

    asked = {path.rsplit("/", 1)[1] for path in github.paths() if "/commits/" in path}
    # The newest commits were asked (docs only: not counted); the bot's never was.
    assert asked == {c["sha"] for c in newest}
    assert result.summary.commits == 2
    assert result.skip_reason == "2 commits, fewer than the 3 required"
    assert result.github_api_calls == 3 + MAX_PATH_LOOKUPS  # two commit pages, the issues
