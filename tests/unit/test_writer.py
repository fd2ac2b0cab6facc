"""The template writer on real-looking histories: limits, cuts, kinds, counts and determinism."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.generator.cut import is_wide
from services.generator.writer import MODEL, headline, write_post
from services.scanner.github import change_type
from services.scanner.scan import summarise
from shared.events import ActivityItem, ActivitySummary, PostResult
from shared.platforms import PLATFORMS

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 8, tzinfo=UTC)
REPO = "https://github.com/octo/herald"
KINDS = ("commit", "pull_request", "issue", "tag")
SHORT = sorted(name for name, platform in PLATFORMS.items() if not platform.has_title)
TITLED = sorted(name for name, platform in PLATFORMS.items() if platform.has_title)


def commit(
    n: int, message: str, author: str = "ada", *, hours: float | None = None
) -> ActivityItem:
    """A commit as the GitHub scanner reports it: its page, sha, time and classification."""
    sha = (f"{n + 1:06x}" * 7)[:40]
    return ActivityItem(
        kind="commit",
        title=message.splitlines()[0],
        url=f"{REPO}/commit/{sha}",
        author=author,
        sha=sha,
        at=END - timedelta(hours=hours if hours is not None else n + 1),
        change_type=change_type(message, []),
    )


def history(*messages: str | tuple[str, str], tags: tuple[str, ...] = ()) -> ActivitySummary:
    """A window of commits, newest first, summarised by the scanner's own code."""
    items = []
    for n, entry in enumerate(messages):
        message, author = entry if isinstance(entry, tuple) else (entry, "ada")
        items.append(commit(n, message, author))
    items += [ActivityItem(kind="tag", title=tag, at=END - timedelta(minutes=30)) for tag in tags]
    return summarise(items)


def post(platform: str, summary: ActivitySummary, project: str = "octo/herald") -> PostResult:
    return write_post(platform, summary, project=project, window_start=START, window_end=END)


def body(platform: str, summary: ActivitySummary, project: str = "octo/herald") -> str:
    result = post(platform, summary, project)
    assert result.status == "GENERATED", result.error
    return result.body or ""


def sections(markdown: str) -> dict[str, list[str]]:
    """A titled post's bullets by the heading above them."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            found[heading] = []
        elif line.startswith("- ") and heading:
            found[heading].append(line[2:])
    return found


def more_count(text: str) -> int:
    match = re.search(r"…and (\d+) more", text)
    return int(match.group(1)) if match else 0


CONVENTIONAL = history(
    "chore(release): 2.0.0",
    "feat(api): add cursor pagination to job listings (#41)",
    "fix(scheduler): fire a skipped DST slot once, after the gap (#40)",
    "fix: a daylight-saving bug in weekly jobs (#39)",
    "perf(scanner): reuse ETags across pages (#38)",
    "docs: describe the outbox (#37)",
    ("chore(deps): bump httpx from 0.27.0 to 0.28.1 (#36)", "dependabot[bot]"),
    "ci: cache the virtualenv (#35)",
    "refactor!: drop the v0 event envelope (#34)",
    "feat: deprecate the legacy /api/v0 routes (#33)",
    "fix(security): escape project names in emails, CVE-2025-1234 (#32)",
    "test: cover retries (#31)",
    "style: format with ruff (#30)",
    "build: publish wheels for 3.13 (#29)",
    "feat(notifier): send Discord alerts (#28)\n\nBREAKING CHANGE: the webhook setting moved",
    tags=("v2.0.0",),
)
FREE_FORM = history(
    "Merge pull request #12 from ada/slack",
    "Merge branch 'main' into slack",
    "Fix a daylight-saving bug in weekly jobs",
    "Add Slack notifications",
    "Remove the legacy CSV export",
    "Deprecate the --since flag",
    "Validate webhook URLs against SSRF (security)",
    "Update README.md",
    "Bump version to 1.4.0",
    "Improve error messages when GitHub is down",
    'Revert "Add an experimental cache"',
    "Add an experimental cache",
    'Revert "Speed up the scheduler loop"',
    "Tidy imports",
    "Lint",
    ("Handle empty repositories", "bob"),
)


# --- Every platform, any input: the limits and the shape of a result --------------------

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
    change_type=st.none() | st.sampled_from(["breaking", "feature", "fix", "docs", "other"]),
)
summaries = st.builds(
    ActivitySummary,
    commits=st.integers(0, 10**6),
    pull_requests=st.integers(0, 10**6),
    issues=st.integers(0, 10**6),
    tags=st.integers(0, 10**6),
    contributors=st.lists(st.text(min_size=1, max_size=60), max_size=60),
    items=st.lists(items, max_size=60),
    releases=st.lists(texts, max_size=5),
    compare_url=st.none() | st.just(f"{REPO}/compare/a%5E...b"),
)


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


@pytest.mark.parametrize("platform", TITLED)
def test_titled_platforms_get_a_title_naming_project_and_period(platform: str) -> None:
    result = post(platform, busy_summary(3), project="herald")

    assert result.title == "herald: what changed, 2025-01-01 to 2025-01-08"


@pytest.mark.parametrize("platform", SHORT)
def test_short_platforms_get_no_title(platform: str) -> None:
    assert post(platform, busy_summary(3)).title is None


def test_a_post_without_a_window_start_names_the_period_up_to_its_end() -> None:
    result = write_post("blog", busy_summary(1), project="p", window_start=None, window_end=END)

    assert result.title == "p: what changed, up to 2025-01-08"


def test_an_empty_summary_says_there_was_no_new_activity() -> None:
    assert headline(ActivitySummary()) == "no new activity"
    assert body("x", ActivitySummary(), project="herald") == "herald: no new activity."


def test_an_unknown_platform_is_a_failed_result_not_an_exception() -> None:
    result = post("myspace", busy_summary(3))

    assert result.status == "FAILED"
    assert result.platform == "myspace"
    assert result.error == "unknown platform 'myspace'"
    assert result.body is None


# --- Determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("summary", [CONVENTIONAL, FREE_FORM, busy_summary(40)])
def test_equal_input_gives_equal_output_apart_from_timing(
    platform: str, summary: ActivitySummary
) -> None:
    copy = ActivitySummary.model_validate_json(summary.model_dump_json())

    first, second = post(platform, summary), post(platform, copy)

    assert first.model_copy(update={"generation_ms": 0}) == second.model_copy(
        update={"generation_ms": 0}
    )
    assert (first.body or "").encode() == (second.body or "").encode()
    assert first.model == MODEL


# --- A Conventional Commits repository ------------------------------------------------------


def test_a_conventional_changelog_files_each_change_under_its_keep_a_changelog_section() -> None:
    found = sections(body("changelog", CONVENTIONAL))

    assert list(found) == [
        "2025-01-01 to 2025-01-08",
        "Added",
        "Changed",
        "Deprecated",
        "Removed",
        "Fixed",
        "Security",
    ]
    assert found["Added"] == [
        f"**BREAKING:** **notifier:** Send Discord alerts ([#28]({REPO}/pull/28))",
        f"**api:** Add cursor pagination to job listings ([#41]({REPO}/pull/41))",
    ]
    assert found["Changed"] == [f"**scanner:** Reuse ETags across pages ([#38]({REPO}/pull/38))"]
    assert found["Deprecated"] == [f"Deprecate the legacy /api/v0 routes ([#33]({REPO}/pull/33))"]
    assert found["Removed"] == [f"**BREAKING:** Drop the v0 event envelope ([#34]({REPO}/pull/34))"]
    assert [line.split(" ([#")[0] for line in found["Fixed"]] == [
        "**scheduler:** Fire a skipped DST slot once, after the gap",
        "A daylight-saving bug in weekly jobs",
    ]
    assert found["Security"] == [
        f"**security:** Escape project names in emails, CVE-2025-1234 ([#32]({REPO}/pull/32))"
    ]


def test_a_changelog_calls_out_breaking_changes_and_counts_what_it_does_not_list() -> None:
    text = body("changelog", CONVENTIONAL)

    assert text.startswith("## 2025-01-01 to 2025-01-08\n\nReleases: v2.0.0\n")
    assert "**2 breaking changes**, marked **BREAKING** below." in text
    # docs; deps, ci, test, style and build; the release commit is no change at all.
    assert "Not listed: 1 documentation update and 5 maintenance changes." in text
    assert "chore(release)" not in text and "2.0.0\n" not in text.split("Releases:")[1][8:]
    assert "Contributors:" not in text and "ada" not in text


def test_a_short_post_leads_with_the_release_and_the_breaking_changes() -> None:
    text = body("x", CONVENTIONAL)

    assert text.startswith(
        "herald v2.0.0 is out. In the past week: 2 breaking changes, 1 security fix, "
        "1 new feature, 2 fixes and 8 other changes.\n\n"
        "• Breaking: Send Discord alerts\n\n"
        "…and 13 more changes: https://github.com/octo/herald/compare/"
    )
    assert len(text) <= 280
    mastodon = body("mastodon", CONVENTIONAL)
    assert "• Breaking: Send Discord alerts\n• Breaking: Drop the v0 event envelope\n" in mastodon


# --- A free-form repository ----------------------------------------------------------------


def test_free_form_subjects_are_classified_by_their_wording() -> None:
    found = sections(body("changelog", FREE_FORM))

    assert found["Added"] == ["Add Slack notifications"]
    assert found["Removed"] == ["Remove the legacy CSV export"]
    assert found["Deprecated"] == ["Deprecate the --since flag"]
    assert found["Fixed"] == ["Fix a daylight-saving bug in weekly jobs"]
    assert found["Security"] == ["Validate webhook URLs against SSRF (security)"]
    assert found["Changed"] == [
        "Improve error messages when GitHub is down",
        "Handle empty repositories",
        'Revert "Speed up the scheduler loop"',
    ]


def test_merge_commits_version_bumps_and_cancelled_reverts_are_no_changes() -> None:
    for platform in sorted(PLATFORMS):
        text = body(platform, FREE_FORM)

        assert "Merge" not in text, platform
        assert "Bump version" not in text, platform
        assert "experimental cache" not in text, platform


def test_a_blog_post_has_sections_by_kind_a_link_and_thanks_without_author_tags() -> None:
    text = body("blog", FREE_FORM)

    assert text.startswith("# octo/herald: what changed, 2025-01-01 to 2025-01-08\n\n")
    found = sections(text)
    assert list(found)[1:] == [
        "Security",
        "New features",
        "Fixes",
        "Other changes",
        "Deprecations",
        "Removals",
        "Documentation",
    ]
    assert "(ada)" not in text and "(bob)" not in text
    assert "Also in this period: 1 refactoring and 1 maintenance change." in text
    assert text.endswith("Thanks to ada and bob!\n")


def test_a_blog_post_names_the_releases_before_the_changes() -> None:
    summary = ActivitySummary(
        commits=1,
        tags=1,
        contributors=["ada"],
        releases=["v1.0"],
        items=[
            ActivityItem(kind="tag", title="v1.0"),
            ActivityItem(kind="commit", title="Fix login", author="ada"),
        ],
    )

    text = body("blog", summary, project="herald")

    assert text.index("herald v1.0 is out.") < text.index("## Fixes") < text.index("- Fix login")
    assert "(ada)" not in text
    assert text.endswith("Thanks to ada!\n")


# --- Links to the full comparison ----------------------------------------------------------


def test_posts_link_the_comparison_the_scanner_found() -> None:
    url = "https://github.com/octo/herald/compare/" + "0" * 12 + "%5E..." + "f" * 12
    summary = FREE_FORM.model_copy(update={"compare_url": url})

    for platform in sorted(PLATFORMS):
        assert url in body(platform, summary), platform


def test_a_summary_without_a_comparison_gets_one_from_its_commits_when_it_has_them_all() -> None:
    summary = FREE_FORM.model_copy(update={"compare_url": None})
    commits = [item for item in summary.items if item.kind == "commit"]
    newest, oldest = commits[0].sha or "", commits[-1].sha or ""

    for platform in sorted(PLATFORMS):
        text = body(platform, summary)
        assert f"{REPO}/compare/{oldest[:12]}%5E...{newest[:12]}" in text, platform


def test_no_comparison_is_made_up_when_commits_are_missing_or_have_no_page() -> None:
    truncated = FREE_FORM.model_copy(update={"compare_url": None, "commits": 500})
    local = FREE_FORM.model_copy(
        update={
            "compare_url": None,
            "items": [i.model_copy(update={"url": None}) for i in FREE_FORM.items],
        }
    )

    for summary in (truncated, local):
        for platform in sorted(PLATFORMS):
            assert "/compare/" not in body(platform, summary), platform


# --- A single commit ------------------------------------------------------------------------


def test_a_single_commit_is_named_and_linked_on_every_platform() -> None:
    summary = history("fix: stop the login redirect loop")

    assert body("x", summary) == (
        "herald in the past week: 1 fix.\n\n"
        "• Fixed: Stop the login redirect loop\n\n"
        f"Every change: {summary.items[0].url}\n\n"
        "Thanks to ada!"
    )
    changelog = sections(body("changelog", summary))
    assert changelog["Fixed"] == ["Stop the login redirect loop"]
    assert "…and" not in body("blog", summary)


# --- Hundreds of commits --------------------------------------------------------------------


def test_hundreds_of_commits_are_counted_not_listed() -> None:
    fixes = [f"Fix crash number {n} in the parser" for n in range(300)]
    features = [f"Add exporter number {n}" for n in range(40)]
    summary = history(*features, *fixes)  # the scanner keeps the newest 200 items

    assert summary.commits == 340 and len(summary.items) == 200
    for platform in sorted(PLATFORMS):
        text = body(platform, summary)
        limit = PLATFORMS[platform].max_characters
        assert limit is None or len(text) <= limit
        assert text.count("\n") < 80, platform
        assert "/compare/" in text, platform  # the scanner found the whole window's range
    blog = sections(body("blog", summary))
    assert len(blog["New features"]) == 10 + 1
    assert blog["New features"][-1] == "…and 30 more new features."
    assert len(blog["Fixes"]) == 10 + 1
    assert blog["Fixes"][-1] == "…and 150 more fixes."
    assert "Also in this period: 140 earlier changes." in body("blog", summary)


def test_a_short_post_counts_every_change_it_does_not_name() -> None:
    summary = history(*[f"Fix crash number {n} in the parser" for n in range(60)])

    for platform in SHORT:
        text = body(platform, summary)
        named = text.count("\n• ")
        assert named >= 1
        assert named + more_count(text) == 60, platform


def test_a_changelog_counts_the_rest_of_a_long_section() -> None:
    summary = history(*[f"Fix crash number {n} in the parser" for n in range(40)])

    fixed = sections(body("changelog", summary))["Fixed"]

    assert len(fixed) == 25 + 1
    assert fixed[-1] == "…and 15 more fixes."


# --- Languages other than English, and emoji -----------------------------------------------

GERMAN_AND_JAPANESE = history(
    "Fehler bei der Sommerzeitumstellung behoben",
    "fix: Absturz beim Start behoben",
    "feat: 週次ジョブにタイムゾーン設定を追加",
    "ログイン画面のバグを修正しました。次のリリースで配布します。" * 12,
    "ドキュメントを更新",
)


def test_subjects_in_other_languages_go_to_changed_unless_typed() -> None:
    found = sections(body("changelog", GERMAN_AND_JAPANESE))

    assert found["Fixed"] == ["Absturz beim Start behoben"]
    assert found["Added"] == ["週次ジョブにタイムゾーン設定を追加"]
    assert found["Changed"][0] == "Fehler bei der Sommerzeitumstellung behoben"
    assert len(found["Changed"]) == 3


def test_a_long_japanese_subject_is_cut_between_characters_within_the_limit() -> None:
    subject = GERMAN_AND_JAPANESE.items[3].title
    cut = []
    for platform in SHORT:
        text = body(platform, GERMAN_AND_JAPANESE)
        assert len(text) <= (PLATFORMS[platform].max_characters or 0)
        cut += [line for line in text.splitlines() if "ログイン" in line]

    assert cut, "no short post named the Japanese change"
    for line in cut:
        kept = line.removeprefix("• ").removesuffix("…")
        assert subject.startswith(kept) and len(kept) < len(subject)
        assert is_wide(kept[-1])


EMOJI = history(
    "✨ Add dark mode",
    "🐛 Fix crash on an empty config",
    ":memo: Explain the retry ladder",
    "🚀 Launch the new dashboard 🎉",
    "💥 Drop Python 3.10",
    "👩‍💻 Pair on the scheduler 👩🏽‍🔬",
)


def test_gitmoji_decide_the_kind_and_other_emoji_stay_in_the_text() -> None:
    found = sections(body("changelog", EMOJI))

    assert found["Added"] == ["Add dark mode"]
    assert found["Fixed"] == ["Fix crash on an empty config"]
    assert found["Removed"] == ["**BREAKING:** Drop Python 3.10"]
    assert found["Changed"] == [
        "🚀 Launch the new dashboard 🎉",
        "👩‍💻 Pair on the scheduler 👩🏽‍🔬",
    ]
    assert "Not listed: 1 documentation update." in body("changelog", EMOJI)


def test_emoji_survive_whole_in_every_short_post() -> None:
    for platform in SHORT:
        text = body(platform, EMOJI)
        assert len(text) <= (PLATFORMS[platform].max_characters or 0)
        assert "\u200d\n" not in text and not text.endswith("\u200d")
        if "Pair on" in text:
            assert "👩‍💻 Pair on the scheduler 👩🏽‍🔬" in text


# --- Reverts ----------------------------------------------------------------------------------


def test_a_revert_and_the_change_it_reverts_cancel_out_and_a_lone_revert_is_a_change() -> None:
    summary = history(
        'Revert "feat: add the experimental cache (#7)"',
        "feat: add the experimental cache (#7)",
        "revert: fix: retry forever",
        "fix(api): reject empty names (#5)",
    )

    found = sections(body("changelog", summary))

    assert found["Changed"] == ['Revert "fix: retry forever"']
    assert [line.split(" ([#")[0] for line in found["Fixed"]] == ["**api:** Reject empty names"]
    assert "experimental cache" not in body("blog", summary)


# --- Pull requests before commits ------------------------------------------------------------


def test_merged_pull_requests_come_first_and_their_branch_commits_are_counted() -> None:
    pulls = [
        ActivityItem(kind="pull_request", title=title, number=n, url=f"{REPO}/pull/{n}", at=END)
        for n, title in ((21, "Add weekly digests"), (22, "Fix the retry ladder"), (23, "Tidy"))
    ]
    commits = [commit(n, message) for n, message in enumerate(["Lint", "Typo", "Fix import"])]
    duplicate = commit(9, "Add weekly digests (#21)")
    summary = summarise([*pulls, *commits, duplicate]).model_copy(
        update={"compare_url": f"{REPO}/compare/a%5E...b"}
    )

    text = body("x", summary)

    assert text.startswith(
        "herald in the past week: 1 new feature, 1 fix and 4 other changes.\n\n"
        "• Add weekly digests\n• Fix the retry ladder\n"
    )
    blog = body("blog", summary)
    assert blog.count("weekly digests") == 1
    assert "Fix import" not in blog
    assert "3 further commits" in blog


# --- Cuts never break a word --------------------------------------------------------------

# No word here is a prefix of another, nor starts like any word the writer adds itself.
WORDS = [
    f"zq{word}"
    for word in [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliett",
        "kilo",
        "lima",
        "mike",
        "november",
        "oscar",
        "papa",
        "quebec",
        "romeo",
        "sierra",
        "tango",
        "uniform",
        "victor",
        "whiskey",
        "xray",
    ]
]
subjects = st.builds(
    lambda prefix, words, end: prefix + " ".join(words) + end,
    st.sampled_from(["", "fix: ", "feat(api)!: ", "Add ", "Fix ", "🐛 ", "docs: ", "Remove "]),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=60),
    st.sampled_from(["", ".", " (#12)", "!"]),
)


def cut_words(text: str) -> list[str]:
    """Tokens that begin like one of WORDS but are not one: a word cut short."""
    tokens = re.findall(r"[A-Za-z]+", text)
    return [t for t in tokens if t.startswith("zq") and t not in WORDS]


@settings(max_examples=80, deadline=None)
@given(
    platform=st.sampled_from(sorted(PLATFORMS)),
    messages=st.lists(subjects, min_size=1, max_size=30),
)
def test_no_post_cuts_a_word_and_every_post_keeps_its_limit(
    platform: str, messages: list[str]
) -> None:
    summary = history(*messages)

    text = body(platform, summary)

    limit = PLATFORMS[platform].max_characters
    assert limit is None or len(text) <= limit
    assert cut_words(text) == []
    assert body(platform, summary) == text
