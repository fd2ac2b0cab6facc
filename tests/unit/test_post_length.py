"""Post lengths as each network counts them."""

from __future__ import annotations

import pytest

from services.api.post_review import Action, PostState, RefusedMove, initial_state, next_state
from shared.post_length import graphemes, length_refusal, mastodon_characters, x_weight

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # seven code points, one grapheme
FLAG = "🇳🇿"  # two regional indicators


def test_graphemes_count_what_a_reader_sees_as_one_character() -> None:
    assert graphemes(FAMILY) == 1
    assert graphemes(FLAG) == 1
    assert graphemes("e\u0301") == 1  # e and a combining acute
    assert graphemes("漢字") == 2
    assert graphemes("") == 0


def test_x_weighs_latin_once_cjk_twice_emoji_sequences_twice_and_urls_23() -> None:
    assert x_weight("hello") == 5
    assert x_weight("漢字") == 4
    assert x_weight(FAMILY) == 2
    assert x_weight(FLAG) == 2
    assert x_weight("see https://example.com/a/very/long/path/that/goes/on?and=on") == 4 + 23
    # Quotes and dashes weigh 1, but the ellipsis (U+2026) is outside X's light ranges.
    assert x_weight("“quoted” — dash…") == 17
    # NFC first: a decomposed é is one code point once composed.
    assert x_weight("e\u0301") == 1


def test_x_refuses_over_280_weighted() -> None:
    assert length_refusal("x", "a" * 280) is None
    assert length_refusal("x", "漢" * 140) is None
    assert length_refusal("x", "漢" * 141) == "282 characters as X counts them, over X's 280"


def test_mastodon_counts_urls_as_23_and_mentions_by_their_local_part() -> None:
    url = "https://github.com/encode/httpx/compare/0.27.0...0.28.0"
    assert mastodon_characters(f"diff: {url}") == 6 + 23
    assert mastodon_characters("thanks @alice@example.social!") == len("thanks @alice!")
    assert mastodon_characters(FAMILY * 3) == 3
    assert mastodon_characters("x", per_url=30) == 1


def test_bluesky_counts_graphemes_and_bytes() -> None:
    assert length_refusal("bluesky", FLAG * 300) is None  # 2,400 bytes
    assert length_refusal("bluesky", FAMILY * 300) == "7500 bytes of UTF-8, over Bluesky's 3000"
    assert length_refusal("bluesky", "a" * 301) == "301 graphemes, over Bluesky's 300"
    # 300 graphemes, but each decomposed with many combining marks: over 3,000 bytes.
    heavy = ("a" + "\u0301" * 6) * 300
    assert graphemes(heavy) == 300
    assert length_refusal("bluesky", heavy) == "3900 bytes of UTF-8, over Bluesky's 3000"


def test_platforms_without_a_limit_take_any_length_and_a_limit_may_be_the_instances() -> None:
    assert length_refusal("blog", "a" * 50_000) is None
    assert length_refusal("mastodon", "a" * 501) is not None
    assert length_refusal("mastodon", "a" * 501, limit=5000) is None
    assert length_refusal("mastodon", "a" * 5001, limit=5000) == (
        "5001 characters as Mastodon counts them, over the 5000 of the project's Mastodon instance"
    )
    # A link counts as the instance reserves for it: 23 by default, or its own.
    text = "a" * 470 + " https://example.org/" + "p" * 100
    assert length_refusal("mastodon", text) is None
    assert length_refusal("mastodon", text, limit=500, per_url=30) == (
        "501 characters as Mastodon counts them, over the 500 of the project's Mastodon instance"
    )


@pytest.mark.parametrize(
    ("action", "state", "after"),
    [
        (Action.APPROVE, "DRAFT", PostState.APPROVED),
        (Action.SCHEDULE, "DRAFT", PostState.SCHEDULED),
        (Action.SCHEDULE, "FAILED", PostState.SCHEDULED),
        (Action.EDIT, "SCHEDULED", PostState.SCHEDULED),
        (Action.UNSCHEDULE, "SCHEDULED", PostState.APPROVED),
        (Action.DISCARD, "FAILED", PostState.DISCARDED),
        (Action.RESTORE, "DISCARDED", PostState.DRAFT),
    ],
)
def test_allowed_moves(action: Action, state: str, after: PostState) -> None:
    assert next_state(action, state) is after


@pytest.mark.parametrize(
    ("action", "state"),
    [
        (Action.EDIT, "PUBLISHED"),
        (Action.DISCARD, "PUBLISHED"),
        (Action.APPROVE, "APPROVED"),
        (Action.UNSCHEDULE, "DRAFT"),
        (Action.RESTORE, "DRAFT"),
        (Action.APPROVE, None),
    ],
)
def test_refused_moves_say_what_is_allowed(action: Action, state: str | None) -> None:
    with pytest.raises(RefusedMove, match=f"cannot {action.value}"):
        next_state(action, state)


def test_a_new_post_is_a_draft_unless_its_platform_is_auto_published() -> None:
    assert initial_state("mastodon", {}) is PostState.DRAFT
    assert initial_state("mastodon", {"mastodon": "auto"}) is PostState.SCHEDULED
    assert initial_state("x", {"mastodon": "auto"}) is PostState.DRAFT
