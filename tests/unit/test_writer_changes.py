"""Reading subjects as changes: Conventional Commits, wording, gitmoji, merges and releases."""

from __future__ import annotations

import pytest

from services.generator.changes import classify, is_bot, read_activity
from services.generator.subjects import Kind
from shared.events import ActivityItem, ActivitySummary


def change_of(title: str, change_type: str | None = None) -> tuple[Kind, bool, str]:
    change = classify(ActivityItem(kind="commit", title=title, change_type=change_type))
    assert change is not None, title
    return change.kind, change.breaking, change.text


@pytest.mark.parametrize(
    ("title", "kind", "breaking", "text"),
    [
        ("feat: add cursor pagination", "feature", False, "Add cursor pagination"),
        ("feat(api)!: rename jobs to schedules", "feature", True, "Rename jobs to schedules"),
        ("fix(scheduler): fire once after a DST gap", "fix", False, "Fire once after a DST gap"),
        ("perf: reuse ETags", "perf", False, "Reuse ETags"),
        ("refactor: split the writer", "refactor", False, "Split the writer"),
        ("refactor!: remove the v0 envelope", "removed", True, "Remove the v0 envelope"),
        ("feat: deprecate /api/v0", "deprecated", False, "Deprecate /api/v0"),
        ("docs: describe the outbox", "docs", False, "Describe the outbox"),
        ("chore(deps): bump httpx to 0.28", "maintenance", False, "Bump httpx to 0.28"),
        ("chore: remove cross-env", "maintenance", False, "Remove cross-env"),
        ("build: publish wheels", "maintenance", False, "Publish wheels"),
        ("ci: cache the venv", "maintenance", False, "Cache the venv"),
        ("test: cover retries", "maintenance", False, "Cover retries"),
        ("style: format", "maintenance", False, "Format"),
        ("fix: escape names (CVE-2025-1234)", "security", False, "Escape names (CVE-2025-1234)"),
        ("revert: feat: add a cache", "revert", False, 'Revert "feat: add a cache"'),
        ("Fix a daylight-saving bug", "fix", False, "Fix a daylight-saving bug"),
        ("Add Slack notifications.", "feature", False, "Add Slack notifications"),
        ("Remove the CSV export", "removed", False, "Remove the CSV export"),
        ("Drop Python 3.9", "removed", False, "Drop Python 3.9"),
        ("Deprecate --since", "deprecated", False, "Deprecate --since"),
        ("Security: validate webhook URLs", "security", False, "Validate webhook URLs"),
        ("Validate URLs against SSRF", "security", False, "Validate URLs against SSRF"),
        ("Update CHANGELOG.md", "docs", False, "Update CHANGELOG.md"),
        (
            "Add more tests on Enum rendering",
            "maintenance",
            False,
            "Add more tests on Enum rendering",
        ),
        ("Move helpers to _models.py", "refactor", False, "Move helpers to _models.py"),
        ("Crash when the config is empty", "fix", False, "Crash when the config is empty"),
        ("BREAKING: rename the CLI", "refactor", True, "Rename the CLI"),
        ("testing/CliRunner: Fix EOF handling", "fix", False, "Fix EOF handling"),
        ("Improve error messages", "other", False, "Improve error messages"),
        ('Revert "Add a cache"', "revert", False, 'Revert "Add a cache"'),
        ("Fehler bei der Sommerzeit behoben", "other", False, "Fehler bei der Sommerzeit behoben"),
        ("ログインのバグを修正", "other", False, "ログインのバグを修正"),
        ("fix: 起動時のクラッシュを修正", "fix", False, "起動時のクラッシュを修正"),
        ("✨ Add dark mode", "feature", False, "Add dark mode"),
        (":bug: Fix a crash", "fix", False, "Fix a crash"),
        ("💥 Change the config format", "other", True, "Change the config format"),
        ("🚀 Launch the dashboard", "other", False, "🚀 Launch the dashboard"),
    ],
)
def test_a_subject_is_read_as_a_kind_of_change(
    title: str, kind: Kind, breaking: bool, text: str
) -> None:
    assert change_of(title) == (kind, breaking, text)


def test_the_scanners_classification_decides_what_the_wording_does_not() -> None:
    assert change_of("Tighten the parser", "fix")[0] == "fix"
    assert change_of("Tighten the parser", "breaking")[1] is True
    assert change_of("Add a flag", "fix")[0] == "feature"


@pytest.mark.parametrize(
    "title",
    [
        "Merge pull request #12 from ada/slack",
        "Merge branch 'main' into fix-dst",
        "Merge remote-tracking branch 'origin/main'",
        "Merge Stable into main (#3046)",
        "Merge tag 'v1.0'",
        "Version 0.28.0. (#3419)",
        "Release version 8.3.0",
        "v21.0.1",
        "chore(release): publish",
        "chore: release v1.2.0",
        "Bump version to 1.4.0",
    ],
)
def test_merges_and_version_bumps_are_no_changes(title: str) -> None:
    assert classify(ActivityItem(kind="commit", title=title)) is None


def test_tags_and_issues_are_no_changes() -> None:
    assert classify(ActivityItem(kind="tag", title="v1.0")) is None
    assert classify(ActivityItem(kind="issue", title="Crash on start")) is None


def test_a_pull_request_number_in_the_subject_becomes_a_link_to_the_pull_request() -> None:
    item = ActivityItem(
        kind="commit",
        title="Handle empty zstd responses (#3412)",
        url="https://github.com/encode/httpx/commit/47f4a96f",
    )

    change = classify(item)

    assert change is not None
    assert (change.text, change.number) == ("Handle empty zstd responses", 3412)
    assert change.url == "https://github.com/encode/httpx/pull/3412"
    assert change.from_pull_request


def test_a_pull_request_and_its_squashed_commit_are_one_change() -> None:
    summary = ActivitySummary(
        commits=1,
        pull_requests=1,
        items=[
            ActivityItem(kind="commit", title="Add digests (#21)"),
            ActivityItem(kind="pull_request", title="Add digests", number=21, url="u/pull/21"),
        ],
    )

    [change] = read_activity(summary).changes

    assert (change.number, change.url) == (21, "u/pull/21")


def test_bots_are_not_thanked() -> None:
    summary = ActivitySummary(contributors=["ada", "dependabot[bot]", "renovate", "pre-commit-ci"])

    assert read_activity(summary).people == ["ada"]
    assert is_bot("github-actions[bot]") and not is_bot("robotics-fan")


def test_commits_the_summary_counted_but_did_not_carry_are_counted_as_unseen() -> None:
    summary = ActivitySummary(
        commits=500, items=[ActivityItem(kind="commit", title=f"Fix {n}") for n in range(200)]
    )

    activity = read_activity(summary)

    assert (len(activity.changes), activity.unseen, activity.total) == (200, 300, 500)
