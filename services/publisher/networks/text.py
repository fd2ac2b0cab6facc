"""How each network measures a post, and where its links are.

Mastodon counts grapheme clusters of `spoiler_text` and `status` together, after replacing
each URL that has a scheme with `characters_reserved_per_url` characters (23 by default) and
each `@user@domain` mention with `@user`. Bluesky counts the text as it is: at most 300
grapheme clusters and 3,000 UTF-8 bytes, and its links are facets whose offsets are UTF-8
byte positions. A post over a limit is refused here, naming the count and the limit, before
a request is spent on it; the network's own refusal says the same if the two ever disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.publisher.networks import graphemes
from shared.errors import PermanentError

BLUESKY_MAX_GRAPHEMES = 300
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


class PostTooLongError(PermanentError):
    """The post is longer than the network allows."""


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


def mastodon_length(text: str, *, spoiler_text: str = "", reserved_per_url: int = 23) -> int:
    """The length Mastodon gives a status: graphemes, each URL as `reserved_per_url`."""
    countable = []
    at = 0
    for link in find_links(text):
        countable.append(_without_domains(text[at : link.start]))
        countable.append("x" * reserved_per_url)
        at = link.end
    countable.append(_without_domains(text[at:]))
    return graphemes.count(spoiler_text + "".join(countable))


def _without_domains(text: str) -> str:
    return _MENTION.sub(lambda match: "@" + match.group(1), text)


def check_mastodon(
    text: str, *, max_characters: int, reserved_per_url: int, instance: str, spoiler_text: str = ""
) -> None:
    """Refuse a status longer than the instance allows, naming the instance's limit."""
    length = mastodon_length(text, spoiler_text=spoiler_text, reserved_per_url=reserved_per_url)
    if length > max_characters:
        raise PostTooLongError(
            f"{length} characters, over the {max_characters} of the Mastodon instance "
            f"{instance} (each link counts {reserved_per_url})"
        )


def check_bluesky(text: str) -> None:
    """Refuse a post over Bluesky's 300 graphemes or 3,000 bytes."""
    count = graphemes.count(text)
    if count > BLUESKY_MAX_GRAPHEMES:
        raise PostTooLongError(f"{count} graphemes, over Bluesky's {BLUESKY_MAX_GRAPHEMES}")
    size = len(text.encode("utf-8"))
    if size > BLUESKY_MAX_BYTES:
        raise PostTooLongError(f"{size} bytes, over Bluesky's {BLUESKY_MAX_BYTES}")


def link_facets(text: str) -> list[dict[str, Any]]:
    """`app.bsky.richtext.facet` links for every URL in `text`, offsets in UTF-8 bytes."""
    facets = []
    for link in find_links(text):
        start = len(text[: link.start].encode("utf-8"))
        end = start + len(link.url.encode("utf-8"))
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link.url}],
            }
        )
    return facets
