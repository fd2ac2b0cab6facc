"""A job's slots: the scheduled instants its stored schedule gives, with jitter applied.

`next_run_at` holds the instant the job should next fire: a slot, or a slot plus that slot's
jitter. Either way the slot itself (the execution's `scheduledFor`) is the latest slot at or
before it, because the jitter stays under half the gap to the next slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.scheduler.policies import MISSED_COUNT_CAP, jitter_offset
from shared.dispatch import CUSTOM, ScheduledJob, custom_runs, next_run_after, previous_slot
from shared.scheduling import MAX_COUNT, preset_next_runs

_SECOND = timedelta(seconds=1)


def slot_of(job: ScheduledJob, fire_at: datetime) -> datetime:
    """Return the slot a stored next run belongs to."""
    if not job.jitter:
        return fire_at
    # Slots fall on whole minutes: the latest one before fire_at + 1 s is at or before it.
    slot = previous_slot(job, fire_at.replace(microsecond=0) + _SECOND)
    if slot is None or fire_at - slot > timedelta(seconds=job.jitter) + _SECOND:
        return fire_at  # not a jittered slot of this schedule (edited meanwhile): as stored
    return slot


def jittered(job: ScheduledJob, slot: datetime) -> datetime:
    """Return when a slot should fire: the slot plus its deterministic jitter."""
    if not job.jitter:
        return slot
    gap = next_run_after(job, slot) - slot
    return slot + jitter_offset(job.id, slot, jitter=job.jitter, gap=gap)


def recomputed(job: ScheduledJob, stored: datetime, *, now: datetime) -> datetime:
    """Return the next run the rules in force give a job whose next run was stored under others.

    As an edit at `now` would: the first slot after `now`, with its jitter. A slot already
    passed whose jitter has not (stored at the slot plus its jitter) keeps its place if the
    rules still have it. Slots the new rules put between the last run and `now` are not run.
    """
    slot = slot_of(job, stored)
    after = now if slot > now else slot - _SECOND
    return jittered(job, next_run_after(job, after))


def latest_slot(job: ScheduledJob, now: datetime) -> datetime | None:
    """Return the job's latest slot at or before `now`."""
    return previous_slot(job, now.replace(microsecond=0) + _SECOND)


def count_slots(job: ScheduledJob, first: datetime, last: datetime) -> int:
    """Count the slots from `first` to `last` inclusive (both slots), up to a cap.

    Slots are the job's runs under its DST policy: a gap day that gap policy SKIP drops is
    no slot, so never a missed one.
    """
    count, after = 1, first
    while count < MISSED_COUNT_CAP:
        if job.frequency == CUSTOM:
            runs = custom_runs(job.schedule, job.time_config, after, MAX_COUNT)
        else:
            runs = preset_next_runs(job.frequency, job.time_config, after, MAX_COUNT)
        inside = [run for run in runs if run <= last]
        count += len(inside)
        if len(inside) < len(runs) or not runs:
            break
        after = runs[-1]
    return min(count, MISSED_COUNT_CAP)
