"""Retry timing: exponential backoff from the job's retryDelay, with jitter and a cap."""

from __future__ import annotations

import random

MAX_BACKOFF_SECONDS = 6 * 3600


def compute_backoff(
    attempt: int,
    *,
    base: float,
    factor: float = 2.0,
    jitter: float = 0.1,
    max_backoff: float = MAX_BACKOFF_SECONDS,
    retry_after: float | None = None,
    rng: random.Random | None = None,
    floor: float = 1.0,
) -> float:
    """Return seconds to wait before attempt `attempt + 1`, after `attempt` failed.

    `base * factor**(attempt-1)`, capped, spread by ±`jitter` so a burst of failures does not
    come back as a burst, never under `floor`; a longer `retry_after` from the remote side wins.
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    delay = min(base * factor ** (attempt - 1), max_backoff)
    spread = (rng or random).uniform(-jitter, jitter)
    delay = max(floor, delay * (1 + spread))
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay
