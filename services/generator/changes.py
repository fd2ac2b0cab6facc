"""Read an activity summary as a person would: what changed, of which kind, and what to skip.

Merge commits, version bumps, tags and issues are no changes; a pull request and its squashed
commit are one; a revert and the change it reverts, both in the window, cancel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.generator.subjects import (
    KIND_VERBS,
    PULL_SUFFIX,
    REVERT,
    Kind,
    capitalised,
    is_merge,
    is_release,
    read_subject,
)
from shared.compare import derived_compare_url, repository_url
from shared.events import ActivityItem, ActivitySummary

# How much a reader cares, first first; the writer lists in this order.
KIND_RANK: dict[Kind, int] = {
    "security": 0,
    "feature": 1,
    "fix": 2,
    "removed": 3,
    "deprecated": 4,
    "perf": 5,
    "other": 6,
    "revert": 7,
    "docs": 8,
    "refactor": 9,
    "maintenance": 10,
}
# From this many pull requests in a window on, commits naming none are counted, not named.
PULL_REQUEST_FLOW = 3
# Kinds a post names one by one; documentation, refactoring and upkeep are counted.
LISTED_KINDS = frozenset(KIND_RANK) - {"docs", "refactor", "maintenance"}


@dataclass(frozen=True)
class Change:
    """One change as a post names it."""

    kind: Kind
    breaking: bool
    text: str
    scope: str | None = None
    number: int | None = None
    url: str | None = None
    # A merged pull request, or a commit naming one: what a person reads first.
    from_pull_request: bool = False
    # The pull request itself (its own title and page), not a commit naming it.
    is_pull_request: bool = False
    # Its place in the summary (newest first): the last tie-break, so output never varies.
    order: int = 0
    reverts: str | None = None
    subject: str = ""

    @property
    def names_its_kind(self) -> bool:
        """Say whether the text opens with its kind's verb ("Fix …" for a fix)."""
        first = re.match(r"[A-Za-z]+", self.text)
        return first is not None and first.group(0).lower() in KIND_VERBS.get(self.kind, ())

    @property
    def listed(self) -> bool:
        return self.breaking or self.kind in LISTED_KINDS

    def rank(self) -> tuple[bool, bool, int, int]:
        return (not self.breaking, not self.from_pull_request, KIND_RANK[self.kind], self.order)


@dataclass(frozen=True)
class Activity:
    """What a post is written from: the changes, and what they leave out."""

    changes: list[Change]
    # Changes counted but not named: commits without a pull request, in a window that has them.
    branch_commits: int
    # Commits and pull requests the summary counted but carried no item for (it keeps the newest).
    unseen: int
    releases: list[str]
    people: list[str]
    compare_url: str | None

    def ranked(self) -> list[Change]:
        return sorted(self.changes, key=Change.rank)

    @property
    def total(self) -> int:
        """Every change, named or not: what counts in a post's "and N more"."""
        return len(self.changes) + self.branch_commits + self.unseen


def is_bot(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith(("[bot]", "-bot")) or lowered in {
        "dependabot",
        "renovate",
        "github-actions",
        "pre-commit-ci",
    }


def read_activity(summary: ActivitySummary) -> Activity:
    """Turn a summary's items into the changes a post names, deduplicated and classified."""
    parsed = [
        change
        for order, item in enumerate(summary.items)
        if (change := classify(item, order)) is not None
    ]
    unique = _cancel_reverts(_deduplicated(parsed))
    branch_commits = 0
    numbered = sum(change.from_pull_request for change in unique)
    if numbered >= PULL_REQUEST_FLOW:
        # Where work arrives by pull request, a commit naming none is most often a step of a
        # merged branch ("Lint", "Typo"), told by its pull request: count it, name it not.
        kept = [c for c in unique if c.from_pull_request or c.breaking or c.kind == "security"]
        branch_commits = len(unique) - len(kept)
        unique = kept
    commit_items = sum(item.kind == "commit" for item in summary.items)
    pull_items = sum(item.kind == "pull_request" for item in summary.items)
    # A squashed pull request is counted twice (as itself and its commit): the larger is safe.
    unseen = max(summary.commits - commit_items, summary.pull_requests - pull_items, 0)
    return Activity(
        changes=unique,
        branch_commits=branch_commits,
        unseen=unseen,
        releases=_releases(summary),
        people=[name for name in summary.contributors if not is_bot(name)],
        compare_url=summary.compare_url or derived_compare_url(summary),
    )


def classify(item: ActivityItem, order: int = 0) -> Change | None:
    """Read one item as a change, or None for what is no change (tags, issues, merges)."""
    if item.kind in ("tag", "issue"):
        return None
    subject = " ".join(item.title.split())
    if not subject or is_merge(subject) or is_release(subject):
        return None
    number = item.number
    suffix = PULL_SUFFIX.search(subject)
    if suffix:
        number = number or int(suffix.group("number"))
        subject = subject[: suffix.start()]
    text, scope, kind, breaking = read_subject(subject.rstrip(" ."), item.change_type)
    reverted = None
    if kind == "revert":
        quoted = REVERT.match(text)
        reverted = quoted.group("reverted") if quoted else text
        text = f'Revert "{reverted}"'
    return Change(
        kind=kind,
        breaking=breaking or item.change_type == "breaking",
        text=capitalised(text),
        scope=scope,
        number=number,
        url=_link(item, number),
        from_pull_request=item.kind == "pull_request" or number is not None,
        is_pull_request=item.kind == "pull_request",
        order=order,
        reverts=reverted,
        subject=subject,
    )


def _link(item: ActivityItem, number: int | None) -> str | None:
    """The pull request's page where known, else the item's own."""
    if item.kind == "pull_request" or number is None:
        return item.url
    repository = repository_url(item.url)
    return f"{repository}/pull/{number}" if repository else item.url


def _normalised(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def _authority(change: Change) -> int:
    return 2 if change.is_pull_request else 1 if change.from_pull_request else 0


def _deduplicated(changes: list[Change]) -> list[Change]:
    """One change per pull request number and per wording, the pull request's own kept."""
    best: dict[str, Change] = {}
    for change in changes:
        keys = [_normalised(change.text)]
        if change.number is not None:
            keys.append(f"#{change.number}")
        held = next((best[key] for key in keys if key in best), None)
        if held is not None:
            if _authority(change) <= _authority(held):
                continue
            for key, value in list(best.items()):
                if value is held:
                    best[key] = change
        for key in keys:
            best[key] = change
    kept = {id(change): change for change in best.values()}
    return [change for change in changes if id(change) in kept]


def _cancel_reverts(changes: list[Change]) -> list[Change]:
    """Drop each revert whose reverted change is in the window, and that change."""
    by_subject = {_normalised(c.subject): c for c in changes if c.kind != "revert"}
    gone: set[int] = set()
    for change in changes:
        if change.reverts is None:
            continue
        target = by_subject.get(_normalised(PULL_SUFFIX.sub("", change.reverts)))
        if target is not None and id(target) not in gone:
            gone |= {id(change), id(target)}
    return [change for change in changes if id(change) not in gone]


def _releases(summary: ActivitySummary) -> list[str]:
    """The window's releases, oldest first, one name per version ("v1.2" and "1.2" are one)."""
    seen: dict[str, str] = {}
    for name in summary.releases:
        seen.setdefault(name.lower().removeprefix("v"), name)
    return list(reversed(seen.values()))
