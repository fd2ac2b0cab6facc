"""Which network publishes a platform's posts.

Mastodon and Bluesky posts go out through those networks' own protocols; every other
platform's (X, LinkedIn, a blog...) through the project's generic webhook, which receives
the post as JSON signed as every delivery of herald's is (`shared.signatures`: the secret
herald made for the project, shown once) and publishes it wherever it likes.
"""

from __future__ import annotations

from typing import Literal

Network = Literal["mastodon", "bluesky", "webhook"]
NETWORKS: tuple[Network, ...] = ("mastodon", "bluesky", "webhook")
NETWORK_NAMES = {"mastodon": "Mastodon", "bluesky": "Bluesky", "webhook": "the generic webhook"}


def network_for(platform: str) -> Network:
    """The network a platform's posts are published through."""
    if platform == "mastodon":
        return "mastodon"
    if platform == "bluesky":
        return "bluesky"
    return "webhook"
