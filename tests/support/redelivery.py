"""Publish stored events again, as a crash before an ack or a replayed dead letter would."""

from __future__ import annotations

from typing import Any

import aio_pika


async def republish(amqp_url: str, rows: list[Any]) -> None:
    """Publish each `(event_id, payload)` of the outbox's `job.due` rows to the exchange again."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("herald", ensure=True)
        for event_id, payload in rows:
            message = aio_pika.Message(
                payload.encode() if isinstance(payload, str) else bytes(payload),
                message_id=event_id,
                type="job.due",
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, routing_key="job.due")
    finally:
        await connection.close()
