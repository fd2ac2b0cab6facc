"""The scheduler's per-job policies as pure functions: catch-up, overlap, jitter.

The time and the schedule are passed in; the claim (claims.py) does the I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events import Trigger

# Counting the slots of a long outage stops here: a MISSED row says "at least" this many.
MISSED_COUNT_CAP = 100_000


class Overlap(StrEnum):
    SKIP = "SKIP"
    ALLOW = "ALLOW"
    BUFFER_ONE = "BUFFER_ONE"


class OverlapAction(StrEnum):
    FIRE = "FIRE"  # PENDING execution and `job.due` now
    SKIP = "SKIP"  # a SKIPPED execution, no run
    BUFFER = "BUFFER"  # a PENDING execution whose `job.due` waits for the running one


@dataclass(frozen=True)
class Missed:
    first: datetime
    last: datetime
    count: int


@dataclass(frozen=True)
class CatchUp:
    """What to do with a job's due slots: run one (or none), and what was missed."""

    run: datetime | None
    trigger: Trigger
    missed: Missed | None


def jitter_offset(job_id: str, slot: datetime, *, jitter: int, gap: timedelta) -> timedelta:
    """Return the job's deterministic delay for one slot, within [0, jitter] seconds.

    The delay is also kept under half the gap to the next slot, so the slot can always be
    recovered from the delayed instant (the latest slot at or before it).
    """
    span = min(float(jitter), gap.total_seconds() / 2)
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{job_id}|{slot.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(milliseconds=int(fraction * span * 1000))


def plan_catch_up(
    *,
    first: datetime,
    latest: datetime,
    now: datetime,
    fire_at: datetime,
    catchup_window: int,
    grace: float,
    last_slot_before: Callable[[datetime], datetime | None],
    count_slots: Callable[[datetime, datetime], int],
) -> CatchUp:
    """Decide a job's due slots `first`..`latest` (both <= now), by its catch-up window.

    1. One slot, fired within `grace` of when it was meant to fire (`fire_at`, its instant
       plus jitter): it runs as scheduled.
    2. Otherwise the slots inside the window (newer than now - catchup_window) run once,
       coalesced to the latest, with trigger CATCHUP.
    3. Older slots become one MISSED record: how many, the first and the last.
    """
    if latest == first and (now - fire_at).total_seconds() <= grace:
        return CatchUp(run=first, trigger=Trigger.SCHEDULE, missed=None)
    cutoff = now - timedelta(seconds=catchup_window)
    if latest >= cutoff:
        run: datetime | None = latest
        last_missed = last_slot_before(cutoff) if first < cutoff else None
    else:
        run, last_missed = None, latest
    missed = None
    if last_missed is not None and last_missed >= first:
        missed = Missed(first=first, last=last_missed, count=count_slots(first, last_missed))
    return CatchUp(run=run, trigger=Trigger.CATCHUP, missed=missed)


def overlap_action(policy: str, *, unfinished: int, buffered_waiting: bool) -> OverlapAction:
    """Decide a slot's fate from the job's overlap policy and its unfinished runs."""
    if unfinished == 0 or policy == Overlap.ALLOW:
        return OverlapAction.FIRE
    if policy == Overlap.BUFFER_ONE and not buffered_waiting:
        return OverlapAction.BUFFER
    # SKIP (the default, and any unknown value), or BUFFER_ONE with one already waiting.
    return OverlapAction.SKIP
