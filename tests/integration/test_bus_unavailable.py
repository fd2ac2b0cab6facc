"""A handler whose database is away waits for it instead of spending the delivery limit."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from shared import topology
from shared.bus import AmqpBus
from shared.db.engine import create_engine, is_disconnect
from shared.errors import DependencyUnavailableError
from shared.events import Event
from tests.support.events import job_due


async def depth(amqp_url: str, queue: str) -> int:
    """Messages ready in a queue, from the broker itself (the management API lags)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def test_an_outage_longer_than_the_delivery_limit_does_not_dead_letter(
    bus: AmqpBus, fresh_amqp_url: str
) -> None:
    calls: list[str] = []
    applied = asyncio.Event()

    async def handler(event: Event) -> None:
        calls.append(event.event_id)
        if len(calls) <= 5:  # the bus's delivery limit is 3
            raise DependencyUnavailableError("database unreachable")
        applied.set()

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await bus.publish(job_due())
    await asyncio.wait_for(applied.wait(), timeout=30)
    await asyncio.sleep(0.5)  # room for a redelivery, were the message not acked
    assert len(calls) == 6
    assert await depth(fresh_amqp_url, topology.SCANNER_QUEUE.dead_letter_queue) == 0
    assert await depth(fresh_amqp_url, topology.SCANNER_QUEUE.name) == 0


async def test_a_handler_still_waiting_at_shutdown_leaves_its_message_for_later(
    fresh_amqp_url: str,
) -> None:
    bus = AmqpBus(fresh_amqp_url, service="tests", prefetch=8, delivery_limit=3)
    await bus.start()
    waiting = asyncio.Event()

    async def handler(event: Event) -> None:
        waiting.set()
        raise DependencyUnavailableError("database unreachable")

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await bus.publish(job_due())
    await asyncio.wait_for(waiting.wait(), timeout=15)
    await asyncio.wait_for(bus.close(grace=5), timeout=10)
    # Back in its queue for the next consumer, not dead-lettered.
    assert await depth(fresh_amqp_url, topology.SCANNER_QUEUE.name) == 1
    assert await depth(fresh_amqp_url, topology.SCANNER_QUEUE.dead_letter_queue) == 0


async def test_a_refused_or_dropped_connection_is_a_disconnect_and_a_bad_query_is_not(
    database_url: str,
) -> None:
    refused = create_engine(
        make_url(database_url).set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    )
    with pytest.raises(ConnectionRefusedError) as caught:
        async with refused.connect() as connection:
            await connection.execute(text("SELECT 1"))
    assert is_disconnect(caught.value)
    await refused.dispose()

    engine = create_engine(database_url, pool_pre_ping=False)
    try:
        with pytest.raises(ProgrammingError) as caught:
            async with engine.connect() as connection:
                await connection.execute(text("SELEKT 1"))
        assert not is_disconnect(caught.value)

        with pytest.raises(DBAPIError) as caught:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert is_disconnect(caught.value)
    finally:
        await engine.dispose()
