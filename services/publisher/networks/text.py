"""How each network measures a post, and where its links are.

Mastodon counts grapheme clusters of `spoiler_text` and `status` together, after replacing
each URL that has a scheme with `characters_reserved_per_url` characters (23 by default) and
each `@user@domain` mention with `@user`. Bluesky counts the text as it is: at most 300
grapheme clusters and 3,000 UTF-8 bytes, and its links are facets whose offsets are UTF-8
byte positions. A post over a limit is refused here, naming the count and the limit, before
a request is spent on it; the network's own refusal says the same if the two ever disagree.
"""

from __future__ import annotations

from typing import Any

from shared.errors import PermanentError
from shared.post_length import (
    BLUESKY_MAX_BYTES,
    find_links,
    graphemes,
    mastodon_characters,
)

BLUESKY_MAX_GRAPHEMES = 300


class PostTooLongError(PermanentError):
    """The post is longer than the network allows."""


def check_mastodon(
    text: str, *, max_characters: int, reserved_per_url: int, instance: str, spoiler_text: str = ""
) -> None:
    """Refuse a status longer than the instance allows, naming the instance's limit."""
    length = mastodon_characters(text, spoiler_text=spoiler_text, per_url=reserved_per_url)
    if length > max_characters:
        raise PostTooLongError(
            f"{length} characters, over the {max_characters} of the Mastodon instance "
            f"{instance} (each link counts {reserved_per_url})"
        )


def check_bluesky(text: str) -> None:
    """Refuse a post over Bluesky's 300 graphemes or 3,000 bytes."""
    count = graphemes(text)
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
