"""Scan one execution's activity window and summarise it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.scanner import localgit
from services.scanner.github import GitHubClient
from shared.errors import ConfigurationError
from shared.events import ActivityItem, ActivitySummary, JobDue

MAX_ITEMS = 200


@dataclass(frozen=True)
class ScanResult:
    summary: ActivitySummary
    github_api_calls: int


async def scan(
    event: JobDue,
    *,
    http: httpx.AsyncClient,
    github_token: str,
    github_api_url: str,
    local_repos_root: str,
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
    client = GitHubClient(
        http=http, base_url=(repo.base_url or github_api_url).rstrip("/"), token=github_token
    )
    items = await client.commits(repo.owner, repo.name, start, end)
    return ScanResult(summarise(items), client.calls)


def summarise(items: list[ActivityItem]) -> ActivitySummary:
    """Count the items by kind and keep the newest few for the writer."""
    ordered = sorted(items, key=lambda item: item.at.timestamp() if item.at else 0, reverse=True)
    contributors = sorted({item.author for item in items if item.author})
    return ActivitySummary(
        commits=sum(item.kind == "commit" for item in items),
        pull_requests=sum(item.kind == "pull_request" for item in items),
        issues=sum(item.kind == "issue" for item in items),
        tags=sum(item.kind == "tag" for item in items),
        contributors=contributors,
        items=ordered[:MAX_ITEMS],
    )
