"""The template writer: every platform's limit, titles, trimming and determinism."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.generator.writer import MODEL, headline, trim, write_post
from shared.events import ActivityItem, ActivitySummary, PostResult
from shared.platforms import PLATFORMS

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 8, tzinfo=UTC)
KINDS = ("commit", "pull_request", "issue", "tag")

# Emoji, right-to-left scripts, combining marks and zero-width characters included.
texts = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(["👩‍💻", "🚀", "שלום", "مرحبا", "e\u0301", "\u200f", "\u200d", " ", "-"]),
    ),
    max_size=30,
).map("".join)
items = st.builds(
    ActivityItem,
    kind=st.sampled_from(KINDS),
    title=texts,
    author=st.none() | st.text(min_size=1, max_size=40),
    number=st.none() | st.integers(1, 100_000),
)
summaries = st.builds(
    ActivitySummary,
    commits=st.integers(0, 10**6),
    pull_requests=st.integers(0, 10**6),
    issues=st.integers(0, 10**6),
    tags=st.integers(0, 10**6),
    contributors=st.lists(st.text(min_size=1, max_size=60), max_size=60),
    items=st.lists(items, max_size=60),
)


def post(platform: str, summary: ActivitySummary, project: str = "herald") -> PostResult:
    return write_post(platform, summary, project=project, window_start=START, window_end=END)


def busy_summary(count: int = 300) -> ActivitySummary:
    return ActivitySummary(
        commits=count,
        pull_requests=count,
        issues=count,
        tags=count,
        contributors=[f"person-{n}" for n in range(count)],
        items=[
            ActivityItem(kind=KINDS[n % 4], title=f"Change number {n} " * 20, number=n)
            for n in range(count)
        ],
    )


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_platform_writes_a_post_within_its_limit_for_a_huge_input(platform: str) -> None:
    result = post(platform, busy_summary(), project="a-very-long-project-name " * 40)

    limit = PLATFORMS[platform].max_characters
    assert result.status == "GENERATED"
    assert result.body
    assert result.characters == len(result.body)
    assert limit is None or result.characters <= limit


@settings(max_examples=60, deadline=None)
@given(platform=st.sampled_from(sorted(PLATFORMS)), summary=summaries, project=texts)
def test_any_summary_yields_a_post_within_the_platform_limit(
    platform: str, summary: ActivitySummary, project: str
) -> None:
    result = post(platform, summary, project=project)

    limit = PLATFORMS[platform].max_characters
    assert result.status == "GENERATED"
    assert result.body is not None
    assert result.characters == len(result.body)
    assert limit is None or len(result.body) <= limit
    assert (result.title is not None) is PLATFORMS[platform].has_title


@pytest.mark.parametrize("platform", sorted(p for p in PLATFORMS if PLATFORMS[p].has_title))
def test_titled_platforms_get_a_title_naming_project_and_period(platform: str) -> None:
    result = post(platform, busy_summary(3))

    assert result.title == "herald: what changed, 2025-01-01 to 2025-01-08"


@pytest.mark.parametrize("platform", sorted(p for p in PLATFORMS if not PLATFORMS[p].has_title))
def test_short_platforms_get_no_title(platform: str) -> None:
    assert post(platform, busy_summary(3)).title is None


def test_a_post_without_a_window_start_names_the_period_up_to_its_end() -> None:
    result = write_post("blog", busy_summary(1), project="p", window_start=None, window_end=END)

    assert result.title == "p: what changed, up to 2025-01-08"


def test_a_short_post_carries_headline_highlights_and_thanks() -> None:
    summary = ActivitySummary(
        commits=1,
        pull_requests=2,
        contributors=["ada"],
        items=[ActivityItem(kind="commit", title="Fix login")],
    )

    body = post("mastodon", summary).body

    assert body == (
        "herald: 1 commit, 2 merged pull requests. Highlights: Fix login. Thanks to 1 contributor!"
    )


def test_a_blog_post_groups_items_by_kind_and_credits_contributors() -> None:
    summary = ActivitySummary(
        commits=1,
        tags=1,
        contributors=["ada"],
        items=[
            ActivityItem(kind="commit", title="Fix login", author="ada"),
            ActivityItem(kind="tag", title="v1.0"),
        ],
    )

    body = post("blog", summary).body or ""

    assert body.index("### Releases") < body.index("- v1.0") < body.index("### Commits")
    assert "- Fix login (ada)" in body
    assert body.endswith("Contributors: ada\n")


def test_a_changelog_has_no_contributors_section() -> None:
    body = post("changelog", busy_summary(2)).body or ""

    assert body.startswith("## 2025-01-01 to 2025-01-08")
    assert "Contributors:" not in body


def test_an_empty_summary_says_there_was_no_new_activity() -> None:
    assert headline(ActivitySummary()) == "no new activity"
    assert post("x", ActivitySummary()).body == "herald: no new activity."


def test_an_unknown_platform_is_a_failed_result_not_an_exception() -> None:
    result = post("myspace", busy_summary(3))

    assert result.status == "FAILED"
    assert result.platform == "myspace"
    assert result.error == "unknown platform 'myspace'"
    assert result.body is None


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_equal_input_gives_equal_output_apart_from_timing(platform: str) -> None:
    first, second = post(platform, busy_summary(40)), post(platform, busy_summary(40))

    assert first.model_copy(update={"generation_ms": 0}) == second.model_copy(
        update={"generation_ms": 0}
    )
    assert first.model == MODEL


def test_trim_leaves_text_within_the_limit_untouched() -> None:
    assert trim("short", 5) == "short"
    assert trim("anything at all", None) == "anything at all"


def test_trim_cuts_at_a_word_boundary_and_marks_the_cut() -> None:
    assert trim("the quick brown fox jumps", 15) == "the quick…"


def test_trim_drops_trailing_punctuation_before_the_mark() -> None:
    assert trim("alpha, beta; gamma", 12) == "alpha, beta…"


def test_trim_cuts_mid_word_when_the_only_space_is_early() -> None:
    assert trim("a supercalifragilistic", 10) == "a superca…"


@settings(max_examples=120, deadline=None)
@given(text=texts, limit=st.integers(1, 500))
def test_trim_never_exceeds_the_limit_and_marks_every_cut(text: str, limit: int) -> None:
    trimmed = trim(text, limit)

    assert len(trimmed) <= limit
    if len(text) <= limit:
        assert trimmed == text
    else:
        assert trimmed.endswith("…")
        assert text.startswith(trimmed[:-1])


def test_a_changelog_groups_changes_by_type_and_names_the_releases() -> None:
    summary = ActivitySummary(
        commits=2,
        pull_requests=1,
        tags=1,
        releases=["v2.0.0"],
        items=[
            ActivityItem(kind="tag", title="v2.0.0"),
            ActivityItem(kind="commit", title="Tidy", change_type="other"),
            ActivityItem(kind="commit", title="fix: crash", change_type="fix"),
            ActivityItem(kind="pull_request", title="drop 3.10", number=4, change_type="breaking"),
        ],
    )

    body = post("changelog", summary).body or ""

    assert "Releases: v2.0.0" in body
    assert body.index("### Breaking changes") < body.index("- #4 drop 3.10")
    assert body.index("- #4 drop 3.10") < body.index("### Fixed") < body.index("### Changed")


def test_a_short_post_names_releases_and_breaking_changes() -> None:
    summary = busy_summary(2).model_copy(
        update={"releases": ["v2.0.0"], "breaking_changes": ["drop 3.10"]}
    )

    body = post("x", summary).body or ""

    assert "Released v2.0.0." in body and "1 breaking change" in body
