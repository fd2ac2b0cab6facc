"""Batches published as frames on a real broker: delivered as aio-pika would deliver them,
confirmed as a whole, refused as a whole, and never left waiting on a closed channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest
from aiormq.exceptions import ChannelNotFoundEntity, DeliveryError

from services.scheduler.frames import publish_confirmed
from shared.outbox import Outgoing
from tests.support.polling import poll_async

# Generous bounds: a hang is the failure these guard against, not slowness.
CONFIRMED_WITHIN = 30.0


@pytest.fixture
async def channel(fresh_amqp_url: str) -> AsyncIterator[aiormq.Channel]:
    connection = await aiormq.connect(fresh_amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.exchange_declare("frames", exchange_type="topic", durable=True)
    for name, arguments in (
        ("taken", {"x-queue-type": "quorum"}),
        # Holds two messages and refuses the rest: the broker nacks them (a classic queue:
        # quorum queues apply a length limit only approximately).
        ("full", {"x-queue-type": "classic", "x-max-length": 2, "x-overflow": "reject-publish"}),
    ):
        await channel.queue_declare(name, durable=True, arguments=arguments)
        await channel.queue_bind(name, "frames", routing_key=name)
    yield channel
    await connection.close()


async def drained(amqp_url: str, queue_name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message in a queue, in order, taken off it."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        queue = await (await connection.channel()).get_queue(queue_name)
        received = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            received.append(message)
    return received


def batch(routing_key: str, count: int, start: int = 0) -> list[Outgoing]:
    return [
        Outgoing(routing_key, f'{{"n": {n}}}'.encode(), f"msg_{n}")
        for n in range(start, start + count)
    ]


async def test_a_confirmed_batch_arrives_whole_in_order_with_the_events_properties(
    channel: aiormq.Channel, fresh_amqp_url: str
) -> None:
    await asyncio.wait_for(
        publish_confirmed(channel, "frames", batch("taken", 300)), CONFIRMED_WITHIN
    )
    await asyncio.wait_for(
        publish_confirmed(channel, "frames", batch("taken", 200, start=300)), CONFIRMED_WITHIN
    )
    assert not channel.confirmations, "every delivery tag was answered"
    received = await drained(fresh_amqp_url, "taken")
    assert [message.message_id for message in received] == [f"msg_{n}" for n in range(500)]
    first = received[0]
    assert first.body == b'{"n": 0}'
    assert (first.content_type, first.type, first.priority) == ("application/json", "taken", 0)
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_batches_published_at_once_on_one_channel_each_arrive_whole(
    channel: aiormq.Channel, fresh_amqp_url: str
) -> None:
    batches = [batch("taken", 100, start=100 * n) for n in range(4)]
    # A body over the negotiated frame size goes in several body frames.
    large = Outgoing("taken", b"[" + b"7," * 150_000 + b"7]", "msg_large")
    assert len(large.body) > channel.max_content_size
    batches.append([large])
    await asyncio.wait_for(
        asyncio.gather(*(publish_confirmed(channel, "frames", each) for each in batches)),
        CONFIRMED_WITHIN,
    )
    assert not channel.confirmations
    received = {
        message.message_id: message.body for message in await drained(fresh_amqp_url, "taken")
    }
    assert set(received) == {f"msg_{n}" for n in range(400)} | {"msg_large"}
    assert received["msg_large"] == large.body
    assert received["msg_399"] == b'{"n": 399}'


async def test_a_batch_the_broker_refuses_in_part_fails_and_the_next_batch_is_confirmed(
    channel: aiormq.Channel,
) -> None:
    with pytest.raises(DeliveryError):
        await asyncio.wait_for(
            publish_confirmed(channel, "frames", batch("full", 5)), CONFIRMED_WITHIN
        )
    # The refused batch's answers are all taken (its acks may come after the next batch's:
    # a classic and a quorum queue confirm at their own pace), so the count still matches.
    await asyncio.wait_for(
        publish_confirmed(channel, "frames", batch("taken", 10)), CONFIRMED_WITHIN
    )
    await poll_async(lambda: not channel.confirmations, timeout=CONFIRMED_WITHIN)


async def test_a_channel_the_broker_closes_fails_the_batch_instead_of_leaving_it_waiting(
    channel: aiormq.Channel,
) -> None:
    # Publishing to an exchange that does not exist makes the broker close the channel.
    with pytest.raises(ChannelNotFoundEntity):
        await asyncio.wait_for(
            publish_confirmed(channel, "no-such-exchange", batch("taken", 50)), CONFIRMED_WITHIN
        )
