"""Scan one execution's activity window and summarise it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from services.scanner import localgit
from services.scanner.github import ETagCache, GitHubClient
from shared.errors import ConfigurationError, TransientError
from shared.events import ActivityItem, ActivitySummary, JobDue

MAX_ITEMS = 200
MAX_NOTABLE = 5

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_VERSION = re.compile(r"\bv?\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?\b")
_RELEASE_TITLE = re.compile(r"^(?:chore\(release\)|(?:chore:\s*)?(?:release|bump version)\b)", re.I)
_NOTABLE_RANK = {"breaking": 0, "feature": 1, "fix": 2, "docs": 4, "other": 3}


@dataclass(frozen=True)
class ScanResult:
    summary: ActivitySummary
    github_api_calls: int


def validate_repository(owner: str, name: str) -> None:
    """Refuse an owner/name GitHub could never have issued, before any request."""
    if not _OWNER.match(owner) or not _NAME.match(name) or name in (".", ".."):
        raise ConfigurationError(f"repository {owner!r}/{name!r} is not of the form owner/name")


def validate_base_url(url: str) -> str:
    """Return the API base URL without a trailing slash, or refuse one that is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"GitHub base URL {url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"GitHub base URL {url!r} must not carry a query or fragment")
    return url.rstrip("/")


async def scan(
    event: JobDue,
    *,
    http: httpx.AsyncClient,
    github_token: str,
    github_api_url: str,
    local_repos_root: str,
    etags: ETagCache | None = None,
    scan_seconds: float = 300.0,
    before_request: Callable[[], None] | None = None,
    now: datetime | None = None,
) -> ScanResult:
    """Collect the activity of the event's repository in (windowStart, windowEnd]."""
    repo = event.repository
    start, end = event.window_start, event.window_end
    if repo.local_path:
        path = localgit.resolve_repository(repo.local_path, local_repos_root)
        items = await localgit.commits(path, start, end) + await localgit.tags(path, start, end)
        return ScanResult(summarise(items), 0)
    if not (repo.owner and repo.name):
        raise ConfigurationError("no repository configured for this project")
    validate_repository(repo.owner, repo.name)
    client = GitHubClient(
        http=http,
        base_url=validate_base_url(repo.base_url or github_api_url),
        token=github_token,
        etags=etags if etags is not None else ETagCache(),
        before_request=before_request,
    )
    # A total deadline per scan, never past the attempt's own deadline.
    remaining = (event.deadline - (now or datetime.now(UTC))).total_seconds()
    budget = max(0.1, min(scan_seconds, remaining))
    try:
        async with asyncio.timeout(budget):
            items = await client.commits(repo.owner, repo.name, start, end)
            items += await client.merged_pulls(repo.owner, repo.name, start, end)
            items += await client.closed_issues(repo.owner, repo.name, start, end)
    except TimeoutError:
        raise TransientError(f"GitHub scan exceeded its {budget:.0f} s deadline") from None
    return ScanResult(summarise(items), client.calls)


def summarise(items: list[ActivityItem]) -> ActivitySummary:
    """Count the items by kind and keep the newest few, the notable ones and releases."""
    ordered = sorted(items, key=lambda item: item.at.timestamp() if item.at else 0, reverse=True)
    contributors = sorted({item.author for item in items if item.author})
    return ActivitySummary(
        commits=sum(item.kind == "commit" for item in items),
        pull_requests=sum(item.kind == "pull_request" for item in items),
        issues=sum(item.kind == "issue" for item in items),
        tags=sum(item.kind == "tag" for item in items),
        contributors=contributors,
        items=ordered[:MAX_ITEMS],
        notable=notable(ordered),
        breaking_changes=_unique(i.title for i in ordered if i.change_type == "breaking"),
        releases=releases(ordered),
    )


def notable(items: list[ActivityItem]) -> list[ActivityItem]:
    """The merged pull requests and closed issues worth naming first: breaking, features, fixes."""
    candidates = [item for item in items if item.kind in ("pull_request", "issue")]
    ranked = sorted(
        candidates,
        key=lambda item: (
            _NOTABLE_RANK.get(item.change_type or "other", 3),
            item.kind != "pull_request",
        ),
    )
    return ranked[:MAX_NOTABLE]


def releases(items: list[ActivityItem]) -> list[str]:
    """Version bumps where visible: tags, and release commits or pull requests naming a version."""
    found = [item.title for item in items if item.kind == "tag"]
    for item in items:
        if item.kind != "tag" and _RELEASE_TITLE.match(item.title):
            match = _VERSION.search(item.title)
            if match:
                found.append(match.group(0))
    return _unique(found)[:20]


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)[:20]
