"""A job's run conditions: what they remove, what they count, and how a skip is worded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.scanner.conditions import (
    _segment_matches,
    glob_matches,
    keep,
    path_matches,
    unmet,
)
from services.scanner.scan import judged, summarise
from shared.events import ActivityItem, RunConditions

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def commit(sha: str, author: str = "ada") -> ActivityItem:
    return ActivityItem(kind="commit", title=f"change {sha}", sha=sha, author=author, at=AT)


def pull(number: int, *labels: str, author: str = "ada") -> ActivityItem:
    return ActivityItem(
        kind="pull_request",
        title=f"pull {number}",
        number=number,
        author=author,
        labels=list(labels),
        at=AT,
    )


def issue(number: int, *labels: str) -> ActivityItem:
    return ActivityItem(kind="issue", title=f"issue {number}", number=number, labels=list(labels))


def test_default_bots_are_removed_before_counting() -> None:
    items = [
        commit("a"),
        commit("b", author="dependabot[bot]"),
        pull(1, author="renovate[bot]"),
        pull(2, author="Dependabot[bot]"),
        pull(3),
    ]
    kept = keep(items, RunConditions())
    assert [item.sha or item.number for item in kept] == ["a", 3]


def test_ignored_authors_are_configurable_and_can_be_emptied() -> None:
    items = [commit("a", author="release-bot"), commit("b", author="dependabot[bot]")]
    assert [i.sha for i in keep(items, RunConditions(ignore_authors=["release-bot"]))] == ["b"]
    assert len(keep(items, RunConditions(ignore_authors=[]))) == 2


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/**", "src/app.py", True),
        ("src/**", "src/deep/er/app.py", True),
        ("src/**", "tests/src/app.py", False),
        ("src/*", "src/deep/app.py", False),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/guide/intro.md", True),
        ("**/*.md", "docs/guide/intro.mdx", False),
        ("docs/", "docs/a/b.txt", True),
        ("*.py", "pkg/mod.py", False),
        ("setup.?y", "setup.py", True),
        ("a+b/[x].txt", "a+b/[x].txt", True),
        ("a+b/[x].txt", "aab/x.txt", False),
        ("src/**", "src", False),
        ("**", "any/where.txt", True),
        ("src/**/test_*.py", "src/test_a.py", True),
        ("src/**/test_*.py", "src/a/b/test_a.py", True),
        ("src/**/test_*.py", "src/a/b/a_test.py", False),
        ("*a*b", "xaxxb", True),
        ("*a*b", "xaxxbc", False),
        ("a?*", "a", False),
    ],
)
def test_path_globs(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


class CountedReads(str):
    """A path segment that counts how often the matcher reads one of its characters."""

    reads = 0

    def __getitem__(self, index: object) -> str:
        CountedReads.reads += 1
        return str.__getitem__(self, index)  # type: ignore[index]


def test_a_pattern_of_many_stars_costs_no_more_than_its_length() -> None:
    # As a regular expression this shape backtracked for seconds on a 40-character path
    # (effectively forever at 300 characters); the matcher reads each character of the
    # path at most once per character of the pattern.
    pattern = "*a" * 140 + "b"
    segment = CountedReads("a" * 40)
    CountedReads.reads = 0
    assert not _segment_matches(pattern, segment)
    assert 0 < CountedReads.reads <= len(pattern) * len(segment)
    assert glob_matches("*a" * 20, "a" * 40)  # the same shape can match


def test_commits_count_by_the_paths_they_change() -> None:
    items = [commit("src"), commit("docs"), commit("both"), commit("unknown")]
    paths = {
        "src": ["src/app.py"],
        "docs": ["docs/index.md", "README.md"],
        "both": ["docs/index.md", "src/app.py"],
    }
    only_code = RunConditions(exclude_paths=["docs/**", "**/*.md"])
    # A commit whose paths were not looked up counts: the scan could not tell.
    assert [i.sha for i in keep(items, only_code, paths)] == ["src", "both", "unknown"]
    in_src = RunConditions(include_paths=["src/**"])
    assert [i.sha for i in keep(items, in_src, paths)] == ["src", "both", "unknown"]
    src_not_tests = RunConditions(include_paths=["src/**"], exclude_paths=["src/app.py"])
    assert [i.sha for i in keep(items, src_not_tests, paths)] == ["unknown"]


def test_without_path_data_commits_are_not_filtered_by_path() -> None:
    items = [commit("a")]
    assert keep(items, RunConditions(include_paths=["src/**"])) == items


def test_labels_filter_pull_requests_and_issues_not_commits() -> None:
    items = [commit("a"), pull(1, "feature"), pull(2, "chore"), issue(3, "Bug"), issue(4)]
    include = RunConditions(include_labels=["feature", "bug"])
    assert [i.sha or i.number for i in keep(items, include)] == ["a", 1, 3]
    exclude = RunConditions(exclude_labels=["CHORE"])
    assert [i.sha or i.number for i in keep(items, exclude)] == ["a", 1, 3, 4]


def test_thresholds_met_give_no_reason() -> None:
    summary = summarise([commit("a"), commit("b"), pull(1), issue(2)])
    conditions = RunConditions(min_commits=2, min_pull_requests=1, min_issues=1, min_total=4)
    assert unmet(summary, conditions) is None
    assert unmet(summary, RunConditions()) is None


def test_reason_names_every_minimum_missed_in_words() -> None:
    summary = summarise([commit("a"), commit("b"), commit("c")])
    assert unmet(summary, RunConditions(min_commits=5)) == "3 commits, fewer than the 5 required"
    assert unmet(summary, RunConditions(min_commits=3, min_pull_requests=1, min_total=4)) == (
        "0 merged pull requests, fewer than the 1 required; "
        "3 commits, merged pull requests and closed issues in all, fewer than the 4 required"
    )
    one = summarise([issue(1)])
    assert unmet(one, RunConditions(min_issues=2)) == "1 closed issue, fewer than the 2 required"


def test_tags_do_not_count_towards_the_total() -> None:
    tag = ActivityItem(kind="tag", title="v1.0.0", at=AT)
    assert unmet(summarise([tag]), RunConditions(min_total=1)) == (
        "0 commits, merged pull requests and closed issues in all, fewer than the 1 required"
    )


def test_a_scan_judged_counts_only_what_the_conditions_keep() -> None:
    items = [commit("a"), commit("b", author="dependabot[bot]"), pull(1, author="renovate[bot]")]
    result = judged(items, RunConditions(min_commits=2), github_api_calls=3)
    assert result.summary.commits == 1 and result.summary.pull_requests == 0
    assert result.skip_reason == "1 commit, fewer than the 2 required"
    assert [item.sha for item in result.summary.items] == ["a"]
    # Without conditions nothing is removed and nothing is judged.
    plain = judged(items, None, github_api_calls=3)
    assert plain.summary.commits == 2 and plain.skip_reason is None


def test_path_matches_any_pattern() -> None:
    assert path_matches("docs/a.md", ["src/**", "docs/**"])
    assert not path_matches("lib/a.py", ["src/**", "docs/**"])
    assert not path_matches("lib/a.py", [])
