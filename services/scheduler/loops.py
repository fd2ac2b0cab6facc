"""The scheduler's loops: the claim loop firing due jobs, and the outbox relay publishing
what it wrote. The standalone mode runs the same loops over its in-process bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.claims import fire_ahead, fire_due
from services.scheduler.due_posts import due_posts_loop
from services.scheduler.records import release_buffered
from services.scheduler.store import due_backlog, earliest_next_run, has_buffered, jobs_by_state
from services.scheduler.zone_rules import ZoneRules
from shared import metrics
from shared.bus import Bus
from shared.db.engine import is_sqlite
from shared.db.notify import (
    JOBS_CHANNEL,
    OUTBOX_CHANNEL,
    POSTS_CHANNEL,
    Listener,
    local_wakeup,
)
from shared.events import RetryPolicy
from shared.outbox import OutboxRelay
from shared.retry import compute_backoff
from shared.runtime import pause, start_when_available
from shared.settings import Settings
from shared.supervision import Supervisor, log_failed_pass

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
# Seconds between counts of jobs by state (a full count is not free at a million jobs).
CENSUS_INTERVAL = 60.0
# Longest wait, seconds, before a BUFFER_ONE run is released once its predecessor ended.
BUFFER_POLL = 2.0
# Outbox relays at once in the scheduler (one claims while another waits for confirms), and
# the batches each claims at once and publishes together: an instant's 2,000 runs go out in
# one round, where batches relayed one per relay waited for one another (spread p99 lateness
# 89 ms with four relays of one batch, 72-77 ms with two of four).
RELAY_CONCURRENCY = 2
RELAY_FANOUT = 4
# Seconds before an instant when its due jobs are claimed and written (committed at the
# instant: `claims.fire_ahead`), and how many batches may be held so (a connection each).
CLAIM_AHEAD = 2.0
AHEAD_BATCHES = 6
# Batches claimed at once while behind (a burst, or catching up after downtime).
CLAIM_CONCURRENCY = 2


def system_clock() -> datetime:
    return datetime.now(UTC)


def offset_clock(offset: float) -> Clock:
    """The system clock shifted by `offset` seconds (tests and benchmarks only)."""
    if not offset:
        return system_clock
    shift = timedelta(seconds=offset)
    return lambda: datetime.now(UTC) + shift


async def schedule_loop(
    sessions: async_sessionmaker[AsyncSession],
    *,
    stop: asyncio.Event,
    wake: asyncio.Event,
    batch: int,
    max_sleep: float,
    clock: Clock = system_clock,
    grace: float = 60.0,
    public_url: str = "http://127.0.0.1:8000",
    retry_pause: float = 1.0,
    fired: asyncio.Event | None = None,
    ahead: float = 0.0,
    zone_rules: ZoneRules | None = None,
) -> None:
    """Fire due jobs, then sleep until the earliest next run or until woken.

    With `ahead` (seconds), the jobs of the next instant are claimed and written that long
    before it and committed at it, so they go out late by the commit and the relay alone.

    While the database is away each pass fails and the loop retries after a short pause:
    nothing is lost, since a slot fires only when its transaction commits.
    `fired` is set once a batch with events commits (it wakes this process's outbox relay
    at once, without waiting for the NOTIFY round trip or a poll).
    Each pass first keeps the stored next runs on the time-zone rules in force (`zone_rules`):
    at start and when they change, a batch of jobs is computed again per pass until done.
    """
    zone_rules = zone_rules or ZoneRules()
    last_census = -CENSUS_INTERVAL
    lead = timedelta(seconds=ahead)
    behind = False
    failures = 0
    while not stop.is_set():
        wake.clear()  # before looking: a change notified during this pass gets another
        try:
            catching_up = await zone_rules.keep_current(
                sessions, now=clock(), batch=batch, public_url=public_url
            )
        except Exception as exc:
            # Firing goes on under the rules in force: a failed recompute must not stop it.
            log_failed_pass(log, "computing next runs under new time-zone rules failed", exc)
            catching_up = False
        try:
            # Behind (the last pass claimed a full batch), several batches are claimed at
            # once: SKIP LOCKED gives each its own jobs, and while one waits on PostgreSQL
            # another runs here.
            now = clock()
            results = await asyncio.gather(
                *(
                    fire_due(sessions, now=now, batch=batch, grace=grace, public_url=public_url)
                    for _ in range(CLAIM_CONCURRENCY if behind else 1)
                )
            )
            failures = 0
            if fired is not None and any(result.claimed for result in results):
                fired.set()
            behind = any(result.claimed >= batch for result in results)
            if behind:
                continue  # more are due: no sleeping while behind
            buffered = await release_buffered(sessions, now=clock(), batch=batch)
            next_due = await earliest_next_run(sessions)
            if ahead and next_due is not None and timedelta(0) < next_due - clock() <= lead:
                result = await fire_ahead(
                    sessions,
                    at=next_due,
                    clock=clock,
                    batch=batch,
                    most=batch * AHEAD_BATCHES,
                    grace=grace,
                    public_url=public_url,
                )
                if fired is not None and result.claimed:
                    fired.set()
                continue
            metrics.SCHEDULER_DUE_BACKLOG.set(await due_backlog(sessions, now=clock()))
            if time.monotonic() - last_census >= CENSUS_INTERVAL:
                last_census = time.monotonic()
                for state, count in (await jobs_by_state(sessions)).items():
                    metrics.SCHEDULER_JOBS.labels(state=state).set(count)
        except Exception as exc:
            log_failed_pass(log, "scheduling pass failed; retrying", exc)
            failures += 1
            # A database that is away a while is asked every 5 pauses at most.
            wait = compute_backoff(
                failures, base=retry_pause, max_backoff=retry_pause * 5, floor=0.0
            )
            await pause(wait, stop)
            continue
        sleep = max_sleep
        if next_due is not None:
            metrics.SCHEDULER_NEXT_RUN.set(next_due.timestamp())
            sleep = min(max_sleep, max(0.0, (next_due - clock()).total_seconds() - ahead))
        if buffered or await has_buffered(sessions):
            sleep = min(sleep, BUFFER_POLL)  # a waiting run goes as soon as its predecessor ends
        if catching_up:
            sleep = 0  # next runs still follow old time-zone rules: the next batch at once
        if sleep > 0:
            await pause(sleep, wake, stop)


async def run_loops(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    *,
    stop: asyncio.Event,
    clock: Clock = system_clock,
    listener: Listener | None = None,
    loops: Supervisor | None = None,
) -> None:
    """Fire due jobs and relay the outbox until `stop`; the bus is started here.

    Without a LISTEN/NOTIFY `listener` (SQLite), wake-ups come from this process's commits.
    Both loops run under `loops` (a supervisor of their own when none is given).
    """
    loops = loops or Supervisor("scheduler", stop)
    if listener is not None:
        job_wake, outbox_wake = listener.events[JOBS_CHANNEL], listener.events[OUTBOX_CHANNEL]
        posts_wake = listener.events.get(POSTS_CHANNEL) or asyncio.Event()
    else:
        job_wake, outbox_wake = local_wakeup(JOBS_CHANNEL), local_wakeup(OUTBOX_CHANNEL)
        posts_wake = local_wakeup(POSTS_CHANNEL)
    relay = OutboxRelay(
        sessions,
        bus,
        batch=settings.outbox_batch,
        wake=outbox_wake,
        concurrency=RELAY_CONCURRENCY,
        fanout=RELAY_FANOUT,
        confirm_timeout=settings.scheduler_confirm_timeout,
    )
    # Firing needs only the database: the outbox holds events while the broker is away.
    loops.start(
        "claim loop",
        lambda: schedule_loop(
            sessions,
            stop=stop,
            wake=job_wake,
            batch=settings.scheduler_batch,
            max_sleep=settings.scheduler_max_sleep,
            clock=clock,
            grace=settings.scheduler_late_grace,
            public_url=settings.public_url,
            fired=relay.wake,
            # SQLite takes its one write lock per transaction: held batches would queue.
            ahead=0.0 if is_sqlite(settings.database_url) else CLAIM_AHEAD,
        ),
    )

    loops.start(
        "due posts loop",
        lambda: due_posts_loop(
            sessions,
            stop=stop,
            wake=posts_wake,
            clock=clock,
            batch=settings.scheduler_batch,
            max_sleep=settings.scheduler_max_sleep,
            lease=timedelta(seconds=settings.publish_claim_lease),
            retry_policy=RetryPolicy(
                max_retries=settings.publish_max_retries,
                retry_delay=settings.publish_retry_delay,
            ),
            fired=relay.wake,
        ),
    )

    async def connect_then_relay() -> None:
        if await start_when_available(bus.start, what="broker", stop=stop):
            loops.start("outbox relay", lambda: relay.run(stop))

    connecting = asyncio.create_task(connect_then_relay())
    log.info("service started", service="scheduler")
    await stop.wait()
    log.info("service stopping", service="scheduler")
    await asyncio.gather(connecting, return_exceptions=True)
    await loops.wait()
