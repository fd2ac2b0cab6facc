"""What a scan notices: change types, notable items, breaking changes and version bumps."""

from __future__ import annotations

import pytest

from services.scanner.github import change_type
from services.scanner.scan import notable, releases, summarise
from shared.events import ActivityItem


@pytest.mark.parametrize(
    ("message", "labels", "expected"),
    [
        ("feat: add digest", [], "feature"),
        ("feat(api): add digest", [], "feature"),
        ("fix: crash", [], "fix"),
        ("fix!: drop Python 3.10", [], "breaking"),
        ("refactor: x\n\nBREAKING CHANGE: removes y", [], "breaking"),
        ("Add things", ["enhancement"], "feature"),
        ("Crash on start", ["bug"], "fix"),
        ("Anything", ["breaking-change"], "breaking"),
        ("docs: readme", [], "docs"),
        ("Bump deps", [], "other"),
    ],
)
def test_changes_are_classified_by_prefix_or_label(
    message: str, labels: list[str], expected: str
) -> None:
    assert change_type(message, labels) == expected


def item(kind: str, title: str, change: str = "other", number: int = 1) -> ActivityItem:
    return ActivityItem(kind=kind, title=title, change_type=change, number=number)  # type: ignore[arg-type]


def test_notable_items_put_breaking_changes_and_features_first_and_skip_commits() -> None:
    items = [
        item("issue", "a bug", "fix", 1),
        item("commit", "breaking commit", "breaking"),
        item("pull_request", "feature", "feature", 2),
        item("pull_request", "breaking pull", "breaking", 3),
    ]

    assert [i.title for i in notable(items)] == ["breaking pull", "feature", "a bug"]


def test_version_bumps_come_from_tags_and_release_titles() -> None:
    items = [
        item("tag", "v1.2.0"),
        item("commit", "chore(release): 1.2.0"),
        item("pull_request", "Release v1.3.0-rc.1"),
        item("commit", "Fix 1.2 parsing"),
    ]

    assert releases(items) == ["v1.2.0", "1.2.0", "v1.3.0-rc.1"]


def test_a_summary_lists_breaking_changes_once() -> None:
    items = [
        item("commit", "fix!: drop it", "breaking"),
        item("commit", "fix!: drop it", "breaking"),
    ]

    assert summarise(items).breaking_changes == ["fix!: drop it"]
