"""A renamed or transferred repository: GitHub's 301 followed, the new name reported."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scanner.github import GitHubClient
from services.scanner.scan import GitHubAccess, scan
from shared.outbound import guarded_client, parse_networks
from tests.support.factories import scan_due
from tests.support.fakes.github import FakeGitHub, commit, issue, pull

START = datetime(2025, 3, 1, tzinfo=UTC)
TOKEN = "ghp_test_token"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(token=TOKEN)
    server = fake.serve()
    yield fake, server.url
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(5.0)) as c:
        yield c


def moved_repo(github: FakeGitHub) -> None:
    repo = github.add_repo(
        "octo",
        "repo",
        commits=[
            commit(f"{n:040x}", f"Change {n}", START + timedelta(minutes=n + 1)) for n in range(150)
        ],
        pulls=[pull(1, "feat: digest", updated=START + timedelta(1), merged=START + timedelta(1))],
        issues=[issue(7, "Crash", closed=START + timedelta(days=2))],
    )
    github.move(repo, "octo-org", "renamed")


async def test_the_repository_endpoint_follows_a_move_to_the_repository_by_id(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    moved_repo(fake)
    client = GitHubClient(http=http, base_url=url, token=TOKEN)

    body = await client.repository("/repos/octo/repo")

    assert body["full_name"] == "octo-org/renamed"
    assert [(seen.path, seen.status) for seen in fake.requests] == [
        ("/repos/octo/repo", 301),
        ("/repositories/1000", 200),
    ]
    assert client.moved_id == 1000


async def test_a_moved_repository_is_scanned_in_full_and_its_new_name_reported(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    moved_repo(fake)

    result = await scan(
        scan_due(owner="octo", name="repo"),
        http=http,
        github=GitHubAccess.of(url, TOKEN),
        local_repos_root="/nonexistent",
    )

    summary = result.summary
    assert (summary.commits, summary.pull_requests, summary.issues) == (150, 1, 1)
    assert result.moved_to is not None
    assert (result.moved_to.owner, result.moved_to.name) == ("octo-org", "renamed")
    # One redirect, then the rest of the scan asks by id (pages follow Link verbatim), and
    # one request learns the new name.
    assert [(seen.path, seen.status) for seen in fake.requests] == [
        ("/repos/octo/repo/commits", 301),
        ("/repositories/1000/commits", 200),
        ("/repositories/1000/commits", 200),
        ("/repositories/1000/issues", 200),
        ("/repositories/1000", 200),
    ]
    # The redirect kept the query: the window and the page size reached the new address.
    assert fake.requests[1].query["since"] == "2025-03-01T00:00:00Z"
    assert fake.requests[1].query["per_page"] == "100"
    assert fake.requests[2].query["page"] == "2"
    assert result.github_api_calls == len(fake.requests)


async def test_an_enterprise_server_move_keeps_its_api_prefix(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    moved_repo(fake)

    result = await scan(
        scan_due(owner="octo", name="repo", base_url=f"{url}/api/v3"),
        http=http,
        github=GitHubAccess.of(url, TOKEN),
        local_repos_root="/nonexistent",
    )

    assert result.moved_to is not None and result.moved_to.name == "renamed"
    assert result.moved_to.base_url == f"{url}/api/v3"
    assert fake.paths()[-1] == "/api/v3/repositories/1000"


async def test_a_repository_that_did_not_move_reports_no_move(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    fake.add_repo("octo", "repo", commits=[commit("a" * 40, "Fix", START + timedelta(1))])

    result = await scan(
        scan_due(owner="octo", name="repo"),
        http=http,
        github=GitHubAccess.of(url, TOKEN),
        local_repos_root="/nonexistent",
    )

    assert result.moved_to is None
    assert fake.paths() == ["/repos/octo/repo/commits", "/repos/octo/repo/issues"]
