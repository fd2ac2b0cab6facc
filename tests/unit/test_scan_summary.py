"""The activity window (start, end] and the summary a scan hands to the writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scanner.scan import MAX_ITEMS, summarise
from services.scanner.window import in_window
from shared.events import ActivityItem

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 8, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (START - TICK, False),
        (START, False),
        (START + TICK, True),
        (END - TICK, True),
        (END, True),
        (END + TICK, False),
    ],
)
def test_the_window_excludes_its_start_and_includes_its_end(at: datetime, inside: bool) -> None:
    assert in_window(at, START, END) is inside


@pytest.mark.parametrize(
    ("at", "inside"),
    [(datetime(1970, 1, 1, tzinfo=UTC), True), (END, True), (END + TICK, False)],
)
def test_a_window_without_a_start_reaches_back_to_the_beginning(at: datetime, inside: bool) -> None:
    assert in_window(at, None, END) is inside


def test_adjacent_windows_count_an_instant_exactly_once() -> None:
    middle = START + timedelta(days=3)

    assert in_window(middle, START, middle) != in_window(middle, middle, END)


def item(kind: str, n: int, author: str | None = None, at: datetime | None = None) -> ActivityItem:
    return ActivityItem(kind=kind, title=f"{kind} {n}", author=author, at=at)  # type: ignore[arg-type]


def test_summarise_counts_items_by_kind() -> None:
    items = [
        item("commit", 1),
        item("commit", 2),
        item("commit", 3),
        item("pull_request", 1),
        item("issue", 1),
        item("issue", 2),
    ]

    summary = summarise(items)

    assert (summary.commits, summary.pull_requests, summary.issues, summary.tags) == (3, 1, 2, 0)


def test_summarise_lists_contributors_sorted_and_unique() -> None:
    items = [item("commit", 1, "zoe"), item("commit", 2, "ada"), item("tag", 1, "zoe")]

    assert summarise([*items, item("commit", 3)]).contributors == ["ada", "zoe"]


def test_summarise_puts_the_newest_items_first_and_undated_ones_last() -> None:
    items = [
        item("commit", 1, at=START + timedelta(hours=1)),
        item("commit", 2),
        item("commit", 3, at=START + timedelta(hours=3)),
        item("commit", 4, at=START + timedelta(hours=2)),
    ]

    titles = [i.title for i in summarise(items).items]

    assert titles == ["commit 3", "commit 4", "commit 1", "commit 2"]


def test_summarise_keeps_at_most_the_newest_max_items_but_counts_them_all() -> None:
    items = [item("commit", n, at=START + timedelta(minutes=n)) for n in range(MAX_ITEMS + 50)]

    summary = summarise(items)

    assert summary.commits == MAX_ITEMS + 50
    assert len(summary.items) == MAX_ITEMS
    assert summary.items[0].title == f"commit {MAX_ITEMS + 49}"
    assert summary.items[-1].title == "commit 50"


def test_summarise_links_the_comparison_of_the_whole_window_even_past_the_items_it_keeps() -> None:
    def commit(n: int) -> ActivityItem:
        sha = f"{n:04d}" * 10
        url = f"https://github.com/octo/herald/commit/{sha}"
        return ActivityItem(kind="commit", title="c", sha=sha, url=url, at=START + n * TICK)

    many = summarise([commit(n) for n in range(MAX_ITEMS + 5)])
    one = summarise([commit(7)])

    last = f"{MAX_ITEMS + 4:04d}" * 3
    assert many.compare_url == f"https://github.com/octo/herald/compare/000000000000%5E...{last}"
    assert one.compare_url == "https://github.com/octo/herald/commit/" + "0007" * 10


def test_summarise_links_no_comparison_for_commits_without_pages() -> None:
    local = [item("commit", n, at=START + n * TICK) for n in range(3)]

    assert summarise(local).compare_url is None
    assert summarise([]).compare_url is None


def test_summarising_nothing_is_an_empty_summary() -> None:
    summary = summarise([])

    assert summary.is_empty
    assert summary.items == []
    assert summary.contributors == []


activity = st.builds(
    ActivityItem,
    kind=st.sampled_from(["commit", "pull_request", "issue", "tag"]),
    title=st.text(max_size=10),
    author=st.none() | st.sampled_from(["ada", "bob", "zoe", "Ünal"]),
    at=st.none() | st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(activity, max_size=260))
def test_a_summary_is_consistent_with_its_items(items: list[ActivityItem]) -> None:
    summary = summarise(items)

    assert summary.commits + summary.pull_requests + summary.issues + summary.tags == len(items)
    assert summary.contributors == sorted({i.author for i in items if i.author})
    assert len(summary.items) == min(len(items), MAX_ITEMS)
    stamps = [i.at.timestamp() if i.at else 0 for i in summary.items]
    assert stamps == sorted(stamps, reverse=True)
