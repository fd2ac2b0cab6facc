"""Cut text to a length without breaking a word: at a sentence end if one is near, else a word."""

from __future__ import annotations

import unicodedata

from shared.platforms import Platform
from shared.post_length import length_refusal

ELLIPSIS = "…"
# Sentence ends a cut may keep whole; the ideographic ones need no space after them.
_SENTENCE_ENDS = ".!?"
_IDEOGRAPHIC_ENDS = "。！？"
# Punctuation a cut drops before its ellipsis ("alpha, beta…", not "alpha, beta;…").
_TRAILING = " \t\n,;:-–—/"
# Marks that belong to the character before them: a cut never lands just before one.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def is_wide(char: str) -> bool:
    """Say whether `char` is a CJK ideograph, kana or fullwidth form: text written unspaced."""
    code = ord(char)
    return (
        0x3000 <= code <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
    )


def is_word_boundary(text: str, at: int) -> bool:
    """Say whether cutting `text` before index `at` leaves every word whole."""
    if at <= 0 or at >= len(text):
        return True
    before, after = text[at - 1], text[at]
    if before.isspace() or after.isspace():
        return True
    if is_wide(before) or is_wide(after):
        return not _binds(after)
    # "beta;" then a space: the punctuation is dropped, so the word before it stays whole.
    return after in ",;:" and (at + 1 == len(text) or text[at + 1].isspace())


def _binds(char: str) -> bool:
    """A combining mark, a joiner or a variation selector: part of the character before it."""
    return (
        char in _JOINERS or unicodedata.combining(char) != 0 or "\U0001f3fb" <= char <= "\U0001f3ff"
    )


def _sentence_end(text: str, limit: int) -> int:
    """The length of the longest prefix within `limit` that ends a sentence, or 0."""
    for index in range(min(limit, len(text)) - 1, 0, -1):
        char = text[index]
        if char == "\n":
            return index
        if char in _IDEOGRAPHIC_ENDS:
            return index + 1
        follows = text[index + 1] if index + 1 < len(text) else " "
        if char in _SENTENCE_ENDS and follows.isspace() and not text[index - 1].isspace():
            return index + 1
    return 0


def _grapheme_safe(text: str, at: int) -> int:
    while at > 1 and (_binds(text[at]) or text[at - 1] == "\u200d"):
        at -= 1
    return at


def trim(text: str, limit: int | None) -> str:
    """Cut `text` to at most `limit` characters, never inside a word.

    1. Text within the limit is returned as it is.
    2. A sentence end keeping two thirds of the limit or more: cut there, no mark needed.
    3. Else the last word boundary that leaves room for "…": cut there and mark the cut.
    4. Only a single word longer than the limit is cut inside (at a whole character).
    """
    if limit is None or len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    end = _sentence_end(text, limit)
    if end and end * 3 >= limit * 2:
        return text[:end].rstrip()
    for at in range(limit - 1, 0, -1):
        if is_word_boundary(text, at):
            kept = text[:at].rstrip(_TRAILING)
            if kept:
                return kept + ELLIPSIS
    return text[: _grapheme_safe(text, limit - 1)] + ELLIPSIS


def fits(platform: Platform, text: str) -> bool:
    """Whether `text` is within the platform's limit as its network measures it."""
    return length_refusal(platform.name, text) is None


def fit(text: str, platform: Platform) -> str:
    """`text` cut as `trim` cuts it, as long as fits the platform as its network measures it
    (X weighs CJK twice, links count 23 on X and Mastodon, Bluesky counts graphemes)."""
    if platform.max_characters is None or fits(platform, text):
        return text
    best = trim(text, 1)
    low, high = 2, len(text) - 1
    while low <= high:
        middle = (low + high) // 2
        candidate = trim(text, middle)
        if fits(platform, candidate):
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best
