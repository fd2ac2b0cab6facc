"""Retry timing: the one backoff formula, and the one reader of a server's `Retry-After`."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Protocol

MAX_BACKOFF_SECONDS = 6 * 3600
# Jitter of its own: drawing from `random`'s shared state would move the sequence of any
# other user of it in the process (a seeded simulation, a property test's generator).
JITTER = random.Random()


class Draws(Protocol):
    """Where the jitter comes from: `JITTER`, a seeded `random.Random`, or a test's."""

    def uniform(self, a: float, b: float, /) -> float: ...


class Drawn:
    """Jitter drawn from a given fraction of its range (0: the shortest wait, 1: the longest)."""

    def __init__(self, fraction: float) -> None:
        self._fraction = fraction

    def uniform(self, a: float, b: float, /) -> float:
        return a + (b - a) * self._fraction


def compute_backoff(
    attempt: int,
    *,
    base: float,
    factor: float = 2.0,
    jitter: float = 0.1,
    max_backoff: float = MAX_BACKOFF_SECONDS,
    retry_after: float | None = None,
    rng: Draws | None = None,
    floor: float = 1.0,
) -> float:
    """Return seconds to wait before attempt `attempt + 1`, after `attempt` failed.

    `base * factor**(attempt-1)`, capped, spread by ±`jitter` so a burst of failures does not
    come back as a burst, never under `floor`; a longer `retry_after` from the remote side wins.
    Every retry loop in herald waits by this formula, each with its own base and cap (a job's
    steps from its retryDelay; provider calls, deliveries, a dependency's return, a crashed
    loop's restart from fractions of a second).
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    delay = min(base * factor ** (attempt - 1), max_backoff)
    spread = (rng or JITTER).uniform(-jitter, jitter)
    delay = max(floor, delay * (1 + spread))
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


def wait_from_header(
    headers: Mapping[str, str],
    name: str = "retry-after",
    *,
    now: Callable[[], float] = time.time,
) -> float | None:
    """Seconds a server asks to wait in header `name`, or None when absent or unreadable.

    Reads delta-seconds (`Retry-After: 120`; also the fractions some providers send, and the
    `ratelimit-reset` of the IETF draft) and HTTP dates (`Retry-After: Wed, 21 Oct 2026
    07:28:00 GMT`, RFC 9110 10.2.3); a date in the past, or a negative count, is no wait.
    `headers` is looked up as given: httpx's and aiohttp's headers ignore case.
    """
    raw = headers.get(name)
    if raw is None:
        return None
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
