"""Cutting text to a platform's length: at a sentence end or a word, never inside a word."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.generator.cut import fit, is_wide, trim
from shared.platforms import PLATFORMS
from shared.post_length import length_refusal, x_weight

# Emoji, right-to-left scripts, combining marks and zero-width characters included.
texts = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(["👩‍💻", "🚀", "שלום", "مرحبا", "e\u0301", "\u200f", "\u200d", " ", "-"]),
        st.sampled_from([". ", "! ", "ログインを修正。", "word", "a, b; c"]),
    ),
    max_size=30,
).map("".join)


def test_trim_leaves_text_within_the_limit_untouched() -> None:
    assert trim("short", 5) == "short"
    assert trim("anything at all", None) == "anything at all"


def test_trim_cuts_at_a_word_boundary_and_marks_the_cut() -> None:
    assert trim("the quick brown fox jumps", 15) == "the quick…"


def test_trim_drops_trailing_punctuation_before_the_mark() -> None:
    assert trim("alpha, beta; gamma", 12) == "alpha, beta…"


def test_trim_keeps_words_whole_even_when_the_only_space_is_early() -> None:
    assert trim("a supercalifragilistic", 10) == "a…"


def test_trim_cuts_inside_a_word_only_when_it_is_the_only_word() -> None:
    assert trim("supercalifragilistic", 10) == "supercali…"


def test_trim_prefers_a_sentence_end_and_needs_no_mark_there() -> None:
    text = "Weekly digests landed. They group a week of activity per project."

    assert trim(text, 30) == "Weekly digests landed."


def test_trim_takes_a_word_when_the_sentence_end_is_too_far_back() -> None:
    text = "Done. Then a long second sentence that goes on and on"

    assert trim(text, 40) == "Done. Then a long second sentence that…"


def test_trim_cuts_japanese_between_characters_and_after_a_full_stop() -> None:
    text = "ログイン画面のバグを修正しました。次のリリースで配布します。"

    assert trim(text, 20) == "ログイン画面のバグを修正しました。"
    assert trim(text, 10) == "ログイン画面のバグ…"


def test_trim_never_splits_an_emoji_sequence() -> None:
    text = "x" * 8 + "👩‍💻" + "y"

    cut = trim(text, 10)

    assert cut == "x" * 8 + "…"


@settings(max_examples=200, deadline=None)
@given(text=texts, limit=st.integers(1, 500))
def test_trim_never_exceeds_the_limit_nor_cuts_a_word(text: str, limit: int) -> None:
    trimmed = trim(text, limit)

    assert len(trimmed) <= limit
    if len(text) <= limit:
        assert trimmed == text
        return
    kept = trimmed.removesuffix("…")
    assert text.startswith(kept)
    rest = text[len(kept) :]
    if kept and rest and not any(char.isspace() for char in text[1:limit]):
        return  # one word longer than the limit: the only cut allowed inside a word
    if kept and rest and kept[-1].isalnum() and rest[0].isalnum():
        assert is_wide(kept[-1]) or is_wide(rest[0]), (kept, rest)


def test_a_post_is_cut_to_fit_as_its_network_measures_it() -> None:
    x, bluesky, mastodon = PLATFORMS["x"], PLATFORMS["bluesky"], PLATFORMS["mastodon"]
    # 200 CJK characters weigh 400 on X: cut to what weighs 280 at most, not to 280 of them.
    cjk = "変更を加えました。" * 23
    cut = fit(cjk, x)
    assert length_refusal("x", cut) is None
    assert x_weight(cut) > 200  # as much as fits, not a fraction of it
    # On Mastodon the same text fits whole.
    assert fit(cjk, mastodon) == cjk
    # A link counts 23 on X however long it is: a long URL leaves room for the text.
    text = "Release notes " + "https://example.com/" + "a" * 300
    assert fit(text, x) == text
    # Bluesky counts an emoji sequence once; the cut never splits one.
    family = "👨\u200d👩\u200d👧 "
    cut = fit(family * 200, bluesky)
    assert length_refusal("bluesky", cut) is None
    assert cut.count("\u200d") % 2 == 0 and not cut.rstrip("…").endswith("\u200d")
