"""Keys that make a retried publication the same publication: derived, never drawn.

A retry after a crash (the post went out, the record of it did not) must find the first
attempt's status or record, so both keys come from the post's id alone:

- Mastodon's `Idempotency-Key`: Mastodon answers a repeat within an hour, per account, with
  the status the first request made.
- Bluesky's record key: a TID (the time-ordered key type `app.bsky.feed.post` uses), so the
  record sorts like any other post; a second `createRecord` at that key cannot make a second
  post, and `getRecord` at it finds the first.
"""

from __future__ import annotations

import hashlib
import re

# base32-sortable: the TID alphabet, in code-point order so keys sort as their values.
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_PATTERN = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# herald's ids: a prefix, then 10 characters of milliseconds since the epoch (shared.ids).
_HERALD_ID = re.compile(r"^[a-z]+_([0-9a-hjkmnp-tv-z]{10})[0-9a-hjkmnp-tv-z]{16}$")


def idempotency_key(post_id: str) -> str:
    """The `Idempotency-Key` Mastodon remembers for this post's status."""
    return f"herald-post-{post_id}"


def record_key(post_id: str) -> str:
    """A TID for the post: its id's creation time, plus bits of the id where a clock goes.

    The id's milliseconds give the timestamp (so the key is no later than now, as a TID
    should be); a hash of the whole id fills the microseconds and the 10-bit clock id, so two
    posts created in the same millisecond still get different keys.
    """
    match = _HERALD_ID.match(post_id)
    if match is None:
        raise ValueError(f"not a herald post id: {post_id!r}")
    millis = 0
    for char in match.group(1):
        millis = millis * 32 + _CROCKFORD.index(char)
    digest = int.from_bytes(hashlib.sha256(post_id.encode()).digest()[:8], "big")
    micros = millis * 1000 + digest % 1000
    clock_id = (digest >> 16) & 0x3FF
    return encode_tid(micros, clock_id)


def encode_tid(micros: int, clock_id: int) -> str:
    """A TID: 0, 53 bits of microseconds since the epoch, 10 bits of clock id; 13 chars."""
    if not 0 <= micros < 2**53 or not 0 <= clock_id < 2**10:
        raise ValueError("a TID holds 53 bits of microseconds and a 10-bit clock id")
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        value, rest = divmod(value, 32)
        chars.append(_TID_ALPHABET[rest])
    return "".join(reversed(chars))
