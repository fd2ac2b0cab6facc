"""The prompt built for each platform, and the validation of what a model answers."""

from __future__ import annotations

import json

import pytest

from services.generator.prompt import InvalidPostError, build_prompt, parse_post
from shared.events import ActivityItem, ActivitySummary, GitHubRelease
from shared.platforms import PLATFORMS

SUMMARY = ActivitySummary(
    commits=3,
    pull_requests=1,
    contributors=["ada", "zoe"],
    items=[ActivityItem(kind="pull_request", title="feat: digest", number=4, author="ada")],
    breaking_changes=["fix!: drop Python 3.10"],
    releases=["v2.0.0"],
)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_a_prompt_carries_the_facts_and_the_platforms_rules(platform: str) -> None:
    prompt = build_prompt(PLATFORMS[platform], SUMMARY, project="octo/repo", period="P")

    assert "Project: octo/repo" in prompt.user
    assert "Commits: 3, merged pull requests: 1" in prompt.user
    assert "- [pull_request #4, other] feat: digest by ada" in prompt.user
    assert "v2.0.0" in prompt.user and "drop Python 3.10" in prompt.user
    assert "JSON" in prompt.system
    limit = PLATFORMS[platform].max_characters
    if limit is not None:
        assert f"must not exceed {limit} characters" in prompt.user
        assert str(limit) in prompt.system
    assert ('"title"' in prompt.system) is PLATFORMS[platform].has_title


def test_the_changelog_prompt_asks_for_changes_grouped_by_type() -> None:
    prompt = build_prompt(PLATFORMS["changelog"], SUMMARY, project="p", period="P")

    assert "group the changes by type" in prompt.system


def test_a_valid_answer_is_parsed() -> None:
    answer = json.dumps({"title": "Weekly", "body": "# Weekly\n\nText"})

    assert parse_post(answer, PLATFORMS["blog"]) == ("Weekly", "# Weekly\n\nText")


def test_a_fenced_answer_is_accepted() -> None:
    assert parse_post('```json\n{"body": "hi"}\n```', PLATFORMS["x"]) == (None, "hi")


def test_a_short_platform_drops_a_title_it_has_no_use_for() -> None:
    assert parse_post('{"title": "t", "body": "b"}', PLATFORMS["x"]) == (None, "b")


def test_a_missing_title_falls_back_to_the_bodys_heading() -> None:
    assert parse_post('{"body": "## Week 9\\n\\ntext"}', PLATFORMS["newsletter"])[0] == "Week 9"


def test_an_over_limit_body_is_trimmed_to_the_limit() -> None:
    _, body = parse_post(json.dumps({"body": "word " * 100}), PLATFORMS["x"])

    assert len(body) <= 280 and body.endswith("…")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "empty answer"),
        ("   ", "empty answer"),
        ("Sure! Here is your post", "malformed JSON"),
        ('{"body": "unterminated', "malformed JSON"),
        ("[1, 2]", 'no string "body"'),
        ('{"text": "x"}', 'no string "body"'),
        ('{"body": 5}', 'no string "body"'),
        ('{"body": "   "}', "empty post"),
    ],
)
def test_an_unusable_answer_is_a_clear_error(answer: str, message: str) -> None:
    with pytest.raises(InvalidPostError, match=message):
        parse_post(answer, PLATFORMS["x"])


def test_a_titled_platform_without_any_title_is_an_error() -> None:
    with pytest.raises(InvalidPostError, match="without the title"):
        parse_post('{"body": "no heading"}', PLATFORMS["blog"])


def test_a_release_run_s_prompt_announces_that_release_with_its_notes() -> None:
    release = GitHubRelease(
        tag="v2.0.0",
        name="Two",
        body="Faster.\n\nSmaller.",
        url="https://github.com/octo/repo/releases/tag/v2.0.0",
        previous_tag="v1.9.0",
    )
    summary = SUMMARY.model_copy(update={"release": release})
    prompt = build_prompt(PLATFORMS["x"], summary, project="octo/repo", period="P")

    assert "Announce release: Two (v2.0.0), the changes since v1.9.0" in prompt.user
    assert "Release page: https://github.com/octo/repo/releases/tag/v2.0.0" in prompt.user
    assert "Release notes:\n  Faster.\n  Smaller." in prompt.user
    plain = build_prompt(PLATFORMS["x"], SUMMARY, project="octo/repo", period="P")
    assert "Announce release" not in plain.user
