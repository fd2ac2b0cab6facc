"""The scheduler's batch publisher on the real broker: frames or plain aio-pika deliver the same
messages, and a broker that stops answering fails the batch in bounded time instead of holding
the relay's locked rows for ever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aio_pika
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from yarl import URL

from services.scheduler.publisher import BatchPublishingBus
from shared import topology, tracing
from shared.outbox import Outgoing
from tests.support import processes
from tests.support.proxy import TcpProxy

QUEUE = "herald.scanner"  # bound to job.due by the topology every bus declares


def batch(count: int, start: int = 0) -> list[Outgoing]:
    return [
        Outgoing("job.due", f'{{"n": {n}}}'.encode(), f"evt_{n}")
        for n in range(start, start + count)
    ]


async def drained(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        queue = await (await connection.channel()).get_queue(QUEUE)
        received = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            received.append(message)
    return received


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def proxy(fresh_amqp_url: str) -> AsyncIterator[TcpProxy]:
    url = URL(fresh_amqp_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5672, processes.free_port())
    proxy.restore()
    yield proxy
    proxy.close()


def through(proxy: TcpProxy, amqp_url: str) -> str:
    return str(URL(amqp_url).with_host("127.0.0.1").with_port(proxy.port))


@pytest.mark.parametrize("frames", [True, False], ids=["frames", "aio-pika"])
async def test_both_ways_deliver_the_batch_whole_with_the_events_properties(
    fresh_amqp_url: str, frames: bool
) -> None:
    bus = BatchPublishingBus(
        fresh_amqp_url, service="scheduler-test", clock=clock, frames=frames, confirm_timeout=10
    )
    await bus.start()
    try:
        await bus.publish_many(batch(50))
    finally:
        await bus.close(grace=0)
    received = await drained(fresh_amqp_url)
    assert [message.message_id for message in received] == [f"evt_{n}" for n in range(50)]
    for message in received:
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.type == "job.due"
        assert message.exchange == topology.EXCHANGE


@pytest.mark.parametrize("frames", [True, False], ids=["frames", "aio-pika"])
async def test_a_broker_that_goes_silent_fails_the_batch_in_bounded_time(
    fresh_amqp_url: str, proxy: TcpProxy, frames: bool
) -> None:
    bus = BatchPublishingBus(
        through(proxy, fresh_amqp_url),
        service="scheduler-test",
        clock=clock,
        frames=frames,
        confirm_timeout=1.0,
    )
    await bus.start()
    try:
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="did not confirm a batch of 20 messages within 1 s"):
            await bus.publish_many(batch(20))
        assert time.monotonic() - started < 5
        # The positive control: the same publish once the network flows again is confirmed,
        # on the same channel (the late confirms of the failed batch change nothing).
        proxy.restore()
        await asyncio.wait_for(bus.publish_many(batch(20, start=100)), timeout=10)
    finally:
        proxy.restore()
        await bus.close(grace=0)
    ids = {message.message_id for message in await drained(fresh_amqp_url)}
    assert {f"evt_{n}" for n in range(100, 120)} <= ids


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, "scheduler")
    yield exporter
    tracing.shutdown()


@pytest.mark.parametrize("frames", [True, False], ids=["frames", "aio-pika"])
async def test_each_message_carries_a_send_span_in_its_row_s_trace(
    fresh_amqp_url: str, frames: bool, spans: InMemorySpanExporter
) -> None:
    # Three rows written in three traces (three runs), published as one batch.
    parents = []
    for n in range(3):
        _, parent = tracing.begin_run(f"exec_{n}", f"cron_{n}", "SCHEDULE")
        assert parent is not None
        parents.append(parent)
    messages = [
        Outgoing("job.due", f'{{"n": {n}}}'.encode(), f"evt_{n}", parent)
        for n, parent in enumerate(parents)
    ]
    bus = BatchPublishingBus(
        fresh_amqp_url, service="scheduler-test", clock=clock, frames=frames, confirm_timeout=10
    )
    await bus.start()
    try:
        await bus.publish_many(messages)
    finally:
        await bus.close(grace=0)

    received = {message.message_id: message for message in await drained(fresh_amqp_url)}
    sent = {
        span.attributes["messaging.message.id"]: span
        for span in spans.get_finished_spans()
        if span.name == "send herald" and span.attributes is not None
    }
    assert set(sent) == set(received) == {f"evt_{n}" for n in range(3)}
    for n, parent in enumerate(parents):
        span = sent[f"evt_{n}"]
        _, trace_id, parent_span, _ = parent.split("-")
        assert format(span.context.trace_id, "032x") == trace_id
        assert span.parent is not None and format(span.parent.span_id, "016x") == parent_span
        header = received[f"evt_{n}"].headers["traceparent"]
        assert isinstance(header, str)
        assert header.split("-")[1:3] == [trace_id, format(span.context.span_id, "016x")]
        assert span.attributes is not None
        assert span.attributes["messaging.rabbitmq.destination.routing_key"] == "job.due"
