"""A post's length as each network counts it, and the refusal when it is over.

Networks do not count code points:
- X weighs each code point (twitter-text's v3 configuration): 1 for Latin and the common
  punctuation ranges, 2 for the rest (CJK, most symbols); an emoji sequence counts 2 however
  many code points it joins; every URL counts 23. The text is NFC-normalised first.
- Mastodon counts grapheme clusters, every URL as 23 characters (its
  `characters_reserved_per_url`, which an instance may change) and a mention
  `@user@domain` as `@user` only.
- Bluesky counts grapheme clusters, 300 at most (and 3,000 bytes of UTF-8).
- The others count characters (code points).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex

from shared.platforms import PLATFORMS

X_URL_WEIGHT = 23
MASTODON_URL_CHARACTERS = 23
BLUESKY_MAX_BYTES = 3000

# Loose on purpose: what a reader's client would make a link of, scheme required.
_URL = regex.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,:;!?)\]]")
_MENTION = regex.compile(r"(?<![\w@])@(\w+)@[\w.-]+\w")
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")
# twitter-text v3: the ranges that weigh 1 (scale 100, weight 100); everything else weighs 2.
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


@dataclass(frozen=True)
class Length:
    count: int
    limit: int | None
    unit: str

    @property
    def over(self) -> bool:
        return self.limit is not None and self.count > self.limit


def graphemes(text: str) -> int:
    return len(_GRAPHEME.findall(text))


def x_weight(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    weight = 0
    last = 0
    for url in _URL.finditer(text):
        weight += _x_plain(text[last : url.start()]) + X_URL_WEIGHT
        last = url.end()
    return weight + _x_plain(text[last:])


def _x_plain(text: str) -> int:
    weight = 0
    for cluster in _GRAPHEME.findall(text):
        if _EMOJI.search(cluster):
            weight += 2
            continue
        for char in cluster:
            point = ord(char)
            weight += 1 if any(low <= point <= high for low, high in _X_LIGHT) else 2
    return weight


def mastodon_characters(text: str, *, per_url: int = MASTODON_URL_CHARACTERS) -> int:
    countable = _MENTION.sub(lambda mention: "@" + mention.group(1), text)
    countable = _URL.sub("x" * per_url, countable)
    return graphemes(countable)


def length_of(platform: str, text: str, *, limit: int | None = None) -> Length:
    """`text`'s length on `platform` and its limit (`limit` overrides the usual one, for an
    instance that sets its own)."""
    usual = PLATFORMS[platform].max_characters if platform in PLATFORMS else None
    limit = limit if limit is not None else usual
    if platform == "x":
        return Length(x_weight(text), limit, "characters as X counts them")
    if platform == "mastodon":
        return Length(mastodon_characters(text), limit, "characters as Mastodon counts them")
    if platform == "bluesky":
        return Length(graphemes(text), limit, "graphemes")
    return Length(len(text), limit, "characters")


NETWORK_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky", "linkedin": "LinkedIn"}


def length_refusal(platform: str, text: str, *, limit: int | None = None) -> str | None:
    """Why `text` cannot be posted to `platform` for its length, naming the limit; else None."""
    length = length_of(platform, text, limit=limit)
    name = NETWORK_NAMES.get(platform, platform)
    if length.over:
        return f"{length.count} {length.unit}, over {name}'s {length.limit}"
    if platform == "bluesky" and len(text.encode()) > BLUESKY_MAX_BYTES:
        return f"{len(text.encode())} bytes of UTF-8, over Bluesky's {BLUESKY_MAX_BYTES}"
    return None
