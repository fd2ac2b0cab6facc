"""GitHub's webhook signature (`X-Hub-Signature-256`) and the secrets it is made with."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "sha256="


def new_webhook_secret() -> str:
    """A fresh secret for a project's GitHub webhook: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def signature_of(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends with `body` signed by `secret`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs the raw `body` with `secret`, compared in constant time."""
    if not header:
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), header.strip().encode())
