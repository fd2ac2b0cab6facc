"""The transactional outbox on real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aio_pika
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from shared import outbox
from shared.bus import AmqpBus
from shared.db.schema import OutboxMessage
from shared.events import ExecutionCancelled
from shared.outbox import OutboxRelay, Outgoing
from tests.support import processes
from tests.support.proxy import TcpProxy


@pytest.fixture
def sessions(
    own_sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """A database of each test's own: a relay claims every pending row of its outbox, and
    other tests on the shared database leave theirs there."""
    return own_sessions


def cancelled(n: int) -> ExecutionCancelled:
    return ExecutionCancelled(execution_id=f"exec_{n}", job_id="cron_x", project_id="prj_x")


async def collect(url: str, routing_key: str) -> tuple[aio_pika.abc.AbstractConnection, list[str]]:
    """Bind a private queue to a routing key and collect message ids."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind("herald", routing_key)
    seen: list[str] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            seen.append(str(message.message_id))

    await queue.consume(on_message)
    return connection, seen


async def enqueued(sessions: async_sessionmaker[AsyncSession], count: int) -> set[str]:
    """Commit `count` events to the outbox; return their ids."""
    events = [cancelled(n) for n in range(count)]
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, *events)
    return {event.event_id for event in events}


async def pending(sessions: async_sessionmaker[AsyncSession], ids: set[str]) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.event_id.in_(ids), OutboxMessage.published_at.is_(None))
        )
    return int(count or 0)


async def test_committed_events_are_published_and_rolled_back_ones_never(
    sessions: async_sessionmaker[AsyncSession], bus: AmqpBus, fresh_amqp_url: str
) -> None:
    connection, seen = await collect(fresh_amqp_url, "execution.cancelled")
    kept, dropped = cancelled(1), cancelled(2)
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, kept)
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, dropped)
        await session.rollback()
    relay = OutboxRelay(sessions, bus, batch=100)
    while await relay.relay_once():
        pass
    for _ in range(100):
        if kept.event_id in seen:
            break
        await asyncio.sleep(0.05)
    assert kept.event_id in seen
    assert dropped.event_id not in seen
    assert await pending(sessions, {kept.event_id}) == 0
    await connection.close()


@pytest.mark.parametrize("fanout", [1, 3])
async def test_two_relays_racing_publish_every_row_exactly_once(
    sessions: async_sessionmaker[AsyncSession], fresh_amqp_url: str, fanout: int
) -> None:
    buses = [AmqpBus(fresh_amqp_url, service=f"relay{n}") for n in range(2)]
    for relay_bus in buses:
        await relay_bus.start()
    connection, seen = await collect(fresh_amqp_url, "execution.cancelled")
    events = [cancelled(n) for n in range(600)]
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, *events)
    relays = [OutboxRelay(sessions, relay_bus, batch=50, fanout=fanout) for relay_bus in buses]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.relay_once():
            pass

    await asyncio.gather(*(drain(relay) for relay in relays))
    ids = {event.event_id for event in events}
    for _ in range(200):
        if ids <= set(seen):
            break
        await asyncio.sleep(0.05)
    assert sorted(seen) == sorted(ids)  # all of them, none twice
    assert await pending(sessions, ids) == 0
    for relay_bus in buses:
        await relay_bus.close()
    await connection.close()


class FlakyBatches:
    """A bus publishing whole batches, of which every second one is refused."""

    is_ready = True

    def __init__(self, refusal: BaseException | None = None) -> None:
        self.calls = 0
        self.published: list[str] = []
        self.refusal = refusal or ConnectionError("broker refused the batch")

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        self.calls += 1
        call = self.calls
        await asyncio.sleep(0.01 * (call % 3))  # batches answer in any order
        if call % 2 == 0:
            raise self.refusal
        self.published.extend(str(message.message_id) for message in messages)


async def test_a_failed_batch_stays_pending_and_the_claims_other_batches_are_marked(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await enqueued(sessions, 100)
    bus = FlakyBatches()
    relay = OutboxRelay(sessions, bus, batch=25, fanout=4)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert bus.calls == 4
    assert len(bus.published) == 50
    assert await pending(sessions, ids) == 50
    assert await pending(sessions, set(bus.published)) == 0
    # The next claims take only what failed, until every row went out once.
    while await pending(sessions, ids):
        with contextlib.suppress(ConnectionError):
            await relay.relay_once()
    assert sorted(bus.published) == sorted(ids)


async def test_a_batch_cancelled_by_a_closing_channel_is_retried_not_the_end_of_the_relay(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # aiormq fails what waits on a channel it closes (a missed heartbeat) with CancelledError.
    ids = await enqueued(sessions, 100)
    bus = FlakyBatches(asyncio.CancelledError())
    relay = OutboxRelay(sessions, bus, batch=25, fanout=4, poll_interval=0.05)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert await pending(sessions, ids) == 50
    # The relay's loop takes it as a failure to retry, and goes on until every row is out.
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    for _ in range(200):
        if not await pending(sessions, ids):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert sorted(bus.published) == sorted(ids)


async def test_a_broker_that_goes_silent_fails_the_claim_in_bounded_time_and_keeps_its_rows(
    sessions: async_sessionmaker[AsyncSession], fresh_amqp_url: str
) -> None:
    url = URL(fresh_amqp_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5672, processes.free_port())
    proxy.restore()
    bus = AmqpBus(str(url.with_host("127.0.0.1").with_port(proxy.port)), service="relay-test")
    await bus.start()
    relay = OutboxRelay(sessions, bus, batch=50, confirm_timeout=1.0)
    ids = await enqueued(sessions, 5)
    try:
        proxy.stall()
        with pytest.raises(TimeoutError, match="did not confirm 5 outbox rows within 1 s"):
            await asyncio.wait_for(relay.relay_once(), timeout=10)
        assert await pending(sessions, ids) == 5  # the locks are gone, the rows still pending
        # The positive control: once the broker answers, the same rows go out.
        proxy.restore()
        assert await asyncio.wait_for(relay.relay_once(), timeout=10) == 5
        assert await pending(sessions, ids) == 0
    finally:
        proxy.restore()
        await bus.close(grace=0)
        proxy.close()
