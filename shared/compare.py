"""Links to a window's changes on the repository's site: one commit, or a comparison."""

from __future__ import annotations

from shared.events import ActivityItem, ActivitySummary


def repository_url(commit_url: str | None) -> str | None:
    """The repository's page from one of its commit pages (`…/owner/name/commit/<sha>`)."""
    if not commit_url or "/commit/" not in commit_url:
        return None
    return commit_url.rsplit("/commit/", 1)[0]


def compare_url(commits: list[ActivityItem]) -> str | None:
    """The page showing `commits` together: the commit itself, or oldest's parent to newest.

    None when no commit has a page (a local repository) or they name different repositories.
    """
    dated = sorted(
        (item for item in commits if item.sha and repository_url(item.url)),
        key=lambda item: (item.at.timestamp() if item.at else 0.0, item.sha or ""),
    )
    if not dated:
        return None
    if len(dated) == 1:
        return dated[0].url
    oldest, newest = dated[0], dated[-1]
    repository = repository_url(newest.url)
    if repository != repository_url(oldest.url):
        return None
    # `sha^` (GitHub reads git's notation) starts the comparison at the oldest commit itself;
    # written %5E so that no link finder stops before it.
    return f"{repository}/compare/{(oldest.sha or '')[:12]}%5E...{(newest.sha or '')[:12]}"


def derived_compare_url(summary: ActivitySummary) -> str | None:
    """The comparison for a summary without one, when it holds every commit with its page."""
    commits = [item for item in summary.items if item.kind == "commit"]
    if not commits or len(commits) != summary.commits:
        return None
    if not all(item.sha and repository_url(item.url) for item in commits):
        return None
    return compare_url(commits)
