"""Which network publishes a platform's posts, and the generic webhook's signature.

Mastodon and Bluesky posts go out through those networks' own protocols; every other
platform's (X, LinkedIn, a blog...) through the project's generic webhook, which receives
the post as JSON signed with HMAC-SHA256 and publishes it wherever it likes.

The webhook's signature: `Herald-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
HMAC-SHA256 of `<t>.<raw body>` under the secret herald generated for the project (shown
once). The receiver recomputes it, compares in constant time and refuses a `t` older than
a few minutes (a replay). `Herald-Delivery` is the delivery id: the same for every attempt
at one post, so a receiver that saw it answers again without publishing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Literal

Network = Literal["mastodon", "bluesky", "webhook"]
NETWORKS: tuple[Network, ...] = ("mastodon", "bluesky", "webhook")
NETWORK_NAMES = {"mastodon": "Mastodon", "bluesky": "Bluesky", "webhook": "the generic webhook"}

SIGNATURE_HEADER = "Herald-Signature"
DELIVERY_HEADER = "Herald-Delivery"
# How old a signature a receiver should still accept, seconds (documented for receivers).
SIGNATURE_TOLERANCE = 300


def network_for(platform: str) -> Network:
    """The network a platform's posts are published through."""
    if platform == "mastodon":
        return "mastodon"
    if platform == "bluesky":
        return "bluesky"
    return "webhook"


def new_signing_secret() -> str:
    """A webhook signing secret: 32 random bytes, `whsec_`-prefixed so it reads as one."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, *, at: int | None = None) -> str:
    """The `Herald-Signature` header's value for `body` signed now (or at `at`)."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(
    secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: int = 300
) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance` seconds of now."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = signature(secret, body, at=stamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
