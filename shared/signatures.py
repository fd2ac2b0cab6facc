"""HMAC-SHA256 webhook signatures (GitHub's `X-Hub-Signature-256` scheme) and their secrets.

The api checks GitHub's deliveries with them. herald signs every delivery of its own the same
way, a WEBHOOK job's (the generator) and a post for the generic publishing webhook (the
publisher): `X-Herald-Signature-256` over the raw body, `X-Herald-Delivery` the same on every
attempt at one delivery, `X-Herald-Event` what it is; the body's `sentAt` lets a receiver
refuse a replay. One scheme, so a receiver checks both kinds with the same code, and can
reuse code written for GitHub's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "sha256="
SIGNATURE_HEADER = "X-Herald-Signature-256"
DELIVERY_HEADER = "X-Herald-Delivery"
EVENT_HEADER = "X-Herald-Event"


def new_webhook_secret() -> str:
    """A fresh signing secret (a project's GitHub webhook, a WEBHOOK job): 256 random bits."""
    return secrets.token_urlsafe(32)


def signature_of(secret: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of the raw `body` with `secret`, as GitHub sends it."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs the raw `body` with `secret`, compared in constant time."""
    if not header:
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), header.strip().encode())
