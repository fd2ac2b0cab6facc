"""A release run's scan against the local GitHub server: the commits since the previous
published release (GitHub's comparison of the two tags), and the release in the summary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scanner.scan import GitHubAccess, ScanResult, scan
from shared.events import GitHubRelease, JobDue, Trigger
from shared.outbound import guarded_client, parse_networks
from tests.support.factories import scan_due
from tests.support.fakes.github import FakeGitHub, Repo, commit, pull, release

TOKEN = "ghp_test_token"
LOOPBACK = parse_networks(["127.0.0.1/32"])
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(token=TOKEN)
    server = fake.serve()
    yield fake, server.url
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with guarded_client(LOOPBACK, timeout=httpx.Timeout(5.0, read=2.0)) as client:
        yield client


def released_repo(fake: FakeGitHub) -> Repo:
    """v1.0 at commit 2; a draft and a pre-release after it; v1.1 at commit 6."""
    commits = [commit(f"{n:040x}", f"feat: change {n}", at(n)) for n in range(1, 8)]
    return fake.add_repo(
        "octo",
        "repo",
        commits=commits,
        tags={"v1.0": f"{2:040x}", "v1.1-rc1": f"{4:040x}", "v1.1": f"{6:040x}"},
        releases=[
            release("v0.9", at(0) - timedelta(days=30), name="Old"),
            release("v1.0", at(2) + timedelta(minutes=5), name="One"),
            release("v1.1-rc1", at(4) + timedelta(minutes=5), prerelease=True),
            release("v1.1-draft", None, draft=True, created=at(5)),
            release("v1.1", at(6) + timedelta(minutes=5), name="Eleven"),
        ],
        pulls=[
            pull(7, "Merged for v1.1", updated=at(3), merged=at(3)),
            pull(8, "Merged before v1.0", updated=at(1), merged=at(1)),
        ],
    )


def release_due(tag: str, published: datetime, *, prerelease: bool = False) -> JobDue:
    due = scan_due(start=at(5), end=at(7))
    announced = GitHubRelease(
        tag=tag, name="Eleven", body="Notes", published_at=published, prerelease=prerelease
    )
    return due.model_copy(update={"trigger": Trigger.WEBHOOK, "github_release": announced})


async def run(fake: tuple[FakeGitHub, str], http: httpx.AsyncClient, due: JobDue) -> ScanResult:
    return await scan(
        due,
        http=http,
        github=GitHubAccess.of(fake[1], TOKEN),
        local_repos_root="/nonexistent",
    )


async def test_a_release_covers_the_commits_since_the_previous_full_release(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    released_repo(github[0])
    result = await run(github, http, release_due("v1.1", at(6) + timedelta(minutes=5)))

    commits = [item.title for item in result.summary.items if item.kind == "commit"]
    # Past v1.0 (the pre-release and the draft are not what a full release follows), up to
    # v1.1's own commit: not commit 7, pushed after the tag.
    assert sorted(commits) == [f"feat: change {n}" for n in (3, 4, 5, 6)]
    pulls = [item.title for item in result.summary.items if item.kind == "pull_request"]
    assert pulls == ["Merged for v1.1"]
    assert result.summary.releases == ["v1.1"]
    told = result.summary.release
    assert told is not None
    assert (told.tag, told.name, told.previous_tag) == ("v1.1", "Eleven", "v1.0")
    assert told.previous_published_at == at(2) + timedelta(minutes=5)
    assert result.window == (at(2) + timedelta(minutes=5), at(6) + timedelta(minutes=5))
    assert result.summary.compare_url == "https://github.com/octo/repo/compare/v1.0...v1.1"
    paths = github[0].paths()
    assert "/repos/octo/repo/releases" in paths
    assert "/repos/octo/repo/compare/v1.0...v1.1" in paths
    assert "/repos/octo/repo/commits" not in paths


async def test_a_pre_release_follows_whichever_release_came_last(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    repo = released_repo(github[0])
    repo.tags["v1.2-rc1"] = f"{7:040x}"
    result = await run(
        github, http, release_due("v1.2-rc1", at(7) + timedelta(minutes=5), prerelease=True)
    )
    assert result.summary.release is not None
    assert result.summary.release.previous_tag == "v1.1"
    assert [item.title for item in result.summary.items if item.kind == "commit"] == [
        "feat: change 7"
    ]


async def test_a_comparison_longer_than_a_page_is_read_to_its_end(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    commits = [commit(f"{n:040x}", f"change {n}", T0 + timedelta(minutes=n)) for n in range(1, 253)]
    github[0].add_repo(
        "octo",
        "repo",
        commits=commits,
        tags={"v1": f"{1:040x}", "v2": f"{252:040x}"},
        releases=[release("v1", at(0)), release("v2", at(10))],
    )
    result = await run(github, http, release_due("v2", at(10)))

    assert result.summary.commits == 251
    compared = [seen for seen in github[0].requests if "/compare/" in seen.path]
    assert len(compared) == 3, [seen.path for seen in compared]


async def test_a_first_release_covers_its_tag_s_commits_in_the_run_s_window(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    commits = [commit(f"{n:040x}", f"change {n}", at(n)) for n in range(1, 8)]
    github[0].add_repo(
        "octo",
        "repo",
        commits=commits,
        tags={"v0.1": f"{6:040x}"},
        releases=[release("v0.1", at(6) + timedelta(minutes=5))],
    )
    result = await run(github, http, release_due("v0.1", at(6) + timedelta(minutes=5)))

    # The run's window (hour 5, release]: commit 6, reachable from the tag; not 7 after it,
    # nor 5, committed as the window opened.
    assert [item.title for item in result.summary.items] == ["change 6"]
    assert result.summary.release is not None
    assert result.summary.release.previous_tag is None
    assert result.window == (at(5), at(6) + timedelta(minutes=5))
    listed = [seen for seen in github[0].requests if seen.path.endswith("/commits")]
    assert listed[0].query["sha"] == "v0.1"


async def test_a_run_without_a_release_scans_its_own_window_as_before(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    released_repo(github[0])
    result = await run(github, http, scan_due(start=at(5), end=at(7)))

    assert sorted(item.title for item in result.summary.items if item.kind == "commit") == [
        "feat: change 6",
        "feat: change 7",
    ]
    assert result.summary.release is None
    assert result.window is None
    assert not [path for path in github[0].paths() if path.endswith(("/releases", "/compare"))]
