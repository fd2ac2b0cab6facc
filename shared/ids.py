"""Identifiers: a readable prefix and a time-ordered random part, so keyset pages follow age."""

from __future__ import annotations

import os
import time
import uuid

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rest = divmod(value, 32)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return `prefix_` + 10 chars of milliseconds + 16 random chars (ULID layout)."""
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_base32(millis, 10)}{_base32(randomness, 16)}"


_EVENT_NAMESPACE = uuid.UUID("5b0c1f1e-52f4-4d0e-9a39-0b0d7f1a6e42")


def derived_event_id(source_event_id: str, purpose: str) -> str:
    """Return the id of an event caused by another, stable across redeliveries of the cause.

    A worker that crashes after publishing but before acking republishes with the same id,
    which every consumer's inbox then drops.
    """
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{source_event_id}:{purpose}"))


def new_event_id() -> str:
    """Return a fresh event id."""
    return str(uuid.uuid4())
