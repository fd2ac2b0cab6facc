"""A post's length as each network counts it, and the refusal when it is over.

Networks do not count code points:
- X weighs each code point (twitter-text's v3 configuration): 1 for Latin and the common
  punctuation ranges, 2 for the rest (CJK, most symbols); an emoji sequence counts 2 however
  many code points it joins; every URL counts 23. The text is NFC-normalised first.
- Mastodon counts grapheme clusters, every URL as 23 characters (its
  `characters_reserved_per_url`, which an instance may change) and a mention
  `@user@domain` as `@user` only; an instance sets its own limit (500 by default), which
  the api knows once the publisher has read it.
- Bluesky counts grapheme clusters, 300 at most (and 3,000 bytes of UTF-8).
- The others count characters (code points).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import regex

from shared.platforms import PLATFORMS

X_URL_WEIGHT = 23
MASTODON_URL_CHARACTERS = 23
BLUESKY_MAX_BYTES = 3000

# A URL with a scheme, as the networks' link detectors find one: it runs to the next space
# and gives back what ends a sentence rather than the URL (see `_trim`).
_URL = re.compile(r"(?<![\w/@.])https?://[^\s<>\"]+", re.IGNORECASE)
# Mastodon's mention: `@user` or `@user@domain`, not inside a word, a path or an address.
_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_])?)(?:@[\w.-]+\w)?", re.IGNORECASE
)
_TRAILING = ".,:;!?'\""
_CLOSERS = {")": "(", "]": "["}
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")
# twitter-text v3: the ranges that weigh 1 (scale 100, weight 100); everything else weighs 2.
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


@dataclass(frozen=True)
class Link:
    """A URL in a post: its place as string indices, and the URL itself."""

    start: int
    end: int
    url: str


def _trim(url: str) -> str:
    """Drop what ends a sentence after a URL; keep a closing bracket the URL opened."""
    while url:
        last = url[-1]
        unopened = last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)
        if last not in _TRAILING and not unopened:
            break
        url = url[:-1]
    return url


def find_links(text: str) -> list[Link]:
    """Every http(s) URL in `text`, in order."""
    links = []
    for match in _URL.finditer(text):
        url = _trim(match.group())
        if "://" in url and len(url.split("://", 1)[1]) > 0:
            links.append(Link(match.start(), match.start() + len(url), url))
    return links


@dataclass(frozen=True)
class Length:
    count: int
    limit: int | None
    unit: str

    @property
    def over(self) -> bool:
        return self.limit is not None and self.count > self.limit


def clusters(text: str) -> list[str]:
    """`text` as Unicode's extended grapheme clusters (UAX #29)."""
    return list(_GRAPHEME.findall(text))


def graphemes(text: str) -> int:
    return len(_GRAPHEME.findall(text))


def x_weight(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    weight = 0
    last = 0
    for link in find_links(text):
        weight += _x_plain(text[last : link.start]) + X_URL_WEIGHT
        last = link.end
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


def mastodon_characters(
    text: str, *, spoiler_text: str = "", per_url: int = MASTODON_URL_CHARACTERS
) -> int:
    """The length Mastodon gives a status (with its content warning): graphemes, each URL as
    `per_url`, each `@user@domain` as `@user`."""
    countable = []
    at = 0
    for link in find_links(text):
        countable.append(_local_mentions(text[at : link.start]))
        countable.append("x" * per_url)
        at = link.end
    countable.append(_local_mentions(text[at:]))
    return graphemes(spoiler_text + "".join(countable))


def _local_mentions(text: str) -> str:
    return _MENTION.sub(lambda match: "@" + match.group(1), text)


def length_of(
    platform: str, text: str, *, limit: int | None = None, per_url: int | None = None
) -> Length:
    """`text`'s length on `platform` and its limit (`limit` overrides the usual one, and
    `per_url` Mastodon's 23 characters a link counts, for an instance that sets its own)."""
    usual = PLATFORMS[platform].max_characters if platform in PLATFORMS else None
    limit = limit if limit is not None else usual
    if platform == "x":
        return Length(x_weight(text), limit, "characters as X counts them")
    if platform == "mastodon":
        counted = mastodon_characters(
            text, per_url=per_url if per_url is not None else MASTODON_URL_CHARACTERS
        )
        return Length(counted, limit, "characters as Mastodon counts them")
    if platform == "bluesky":
        return Length(graphemes(text), limit, "graphemes")
    return Length(len(text), limit, "characters")


NETWORK_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky", "linkedin": "LinkedIn"}


def length_refusal(
    platform: str, text: str, *, limit: int | None = None, per_url: int | None = None
) -> str | None:
    """Why `text` cannot be posted to `platform` for its length, naming the limit; else None.

    For Mastodon, `limit` and `per_url` are the instance's own when known; without them the
    refusal says that Mastodon's default was applied, which the instance may exceed.
    """
    length = length_of(platform, text, limit=limit, per_url=per_url)
    name = NETWORK_NAMES.get(platform, platform)
    if length.over and platform == "mastodon":
        if limit is None:
            return (
                f"{length.count} {length.unit}, over Mastodon's default {length.limit} "
                "(the instance's own limit is known once herald has published there)"
            )
        return f"{length.count} {length.unit}, over the {limit} of the project's Mastodon instance"
    if length.over:
        return f"{length.count} {length.unit}, over {name}'s {length.limit}"
    if platform == "bluesky" and len(text.encode()) > BLUESKY_MAX_BYTES:
        return f"{len(text.encode())} bytes of UTF-8, over Bluesky's {BLUESKY_MAX_BYTES}"
    return None
