"""A job's run conditions applied to a scan: which items count, and whether the run goes on.

Pure: the scan gathers the items (and, when the job filters by path, each commit's changed
files), `keep` removes what the conditions exclude, `unmet` says why the rest is too little.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.events import ActivityItem, ActivitySummary, RunConditions

# Per commit sha, the paths it changed; a commit absent from it was not looked up.
ChangedPaths = Mapping[str, Sequence[str]]


def path_matches(path: str, patterns: Sequence[str]) -> bool:
    return any(glob_matches(pattern, path) for pattern in patterns)


def glob_matches(pattern: str, path: str) -> bool:
    """Whether a path glob matches a whole path from the repository root.

    `*` and `?` stay within one path segment; a `**` segment spans any number of segments
    (none included, except at the end: `src/**` is everything under `src/`, not `src`
    itself), so `**/*.md` is every Markdown file; a pattern ending in `/` means everything
    under that folder. Matched segment by segment without backtracking: a tenant's pattern
    never costs more than its length times the path's, however many stars it holds.
    """
    if pattern.endswith("/"):
        pattern += "**"
    parts = pattern.split("/")
    segments = path.split("/")
    # The numbers of segments the parts matched so far can have consumed.
    reached = {0}
    for n, part in enumerate(parts):
        if part == "**":
            at_end = n == len(parts) - 1
            first = min(reached) + (1 if at_end else 0)
            reached = set(range(first, len(segments) + 1))
        else:
            reached = {
                i + 1 for i in reached if i < len(segments) and _segment_matches(part, segments[i])
            }
        if not reached:
            return False
    return len(segments) in reached


def _segment_matches(pattern: str, text: str) -> bool:
    """`*` (any run) and `?` (one character) within a segment: the two-pointer wildcard
    match, which retries only from the last star (time bounded by the two lengths' product)."""
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]) and pattern[p] != "*":
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _paths_kept(paths: Sequence[str], conditions: RunConditions) -> bool:
    """Whether a commit touching `paths` counts: one of them included and not excluded."""
    for path in paths:
        if conditions.include_paths and not path_matches(path, conditions.include_paths):
            continue
        if path_matches(path, conditions.exclude_paths):
            continue
        return True
    return False


def _labels_kept(labels: Sequence[str], conditions: RunConditions) -> bool:
    # Labels compare as GitHub shows them to people: case does not matter.
    have = {label.casefold() for label in labels}
    if conditions.include_labels and not have & {x.casefold() for x in conditions.include_labels}:
        return False
    return not have & {label.casefold() for label in conditions.exclude_labels}


def keep(
    items: Sequence[ActivityItem], conditions: RunConditions, paths: ChangedPaths | None = None
) -> list[ActivityItem]:
    """The items the conditions count: ignored authors' removed, then commits by path and
    pull requests and issues by label. A commit whose paths are unknown is kept."""
    ignored = {author.casefold() for author in conditions.ignore_authors}
    kept = []
    for item in items:
        if item.author is not None and item.author.casefold() in ignored:
            continue
        if item.kind == "commit" and conditions.filters_paths and paths is not None:
            changed = paths.get(item.sha or "")
            if changed is not None and not _paths_kept(changed, conditions):
                continue
        if item.kind in ("pull_request", "issue") and not _labels_kept(item.labels, conditions):
            continue
        kept.append(item)
    return kept


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def unmet(summary: ActivitySummary, conditions: RunConditions) -> str | None:
    """Why the activity is too little for the conditions' minimums, or None when it is enough.

    Every minimum missed is named: "3 commits, fewer than the 5 required; 0 merged pull
    requests, fewer than the 1 required".
    """
    total = summary.commits + summary.pull_requests + summary.issues
    checks = (
        (summary.commits, conditions.min_commits, "commit", "commits"),
        (summary.pull_requests, conditions.min_pull_requests, *_PULLS),
        (summary.issues, conditions.min_issues, "closed issue", "closed issues"),
        (total, conditions.min_total, *_TOTAL),
    )
    reasons = [
        f"{_count(have, one, many)}, fewer than the {wanted} required"
        for have, wanted, one, many in checks
        if wanted is not None and have < wanted
    ]
    return "; ".join(reasons) or None


_PULLS = ("merged pull request", "merged pull requests")
_TOTAL = (
    "commit, merged pull request or closed issue in all",
    "commits, merged pull requests and closed issues in all",
)
