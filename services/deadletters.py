"""Inspect and replay dead-lettered messages (`herald dlq list|replay`).

Messages are taken with manual acks and held unacked while we look; closing the channel
returns every message we did not settle, in order, so listing changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared import topology

BY_DEAD_LETTER_QUEUE = {work.dead_letter_queue: work for work in topology.WORK_QUEUES}
_DEATH_HEADERS = (
    "x-death",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
    "x-delivery-count",
)


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str | None
    routing_key: str
    reason: str
    execution_id: str | None
    excerpt: str


def _reason(message: AbstractIncomingMessage) -> str:
    headers = message.headers or {}
    reason = headers.get("x-first-death-reason") or headers.get("x-last-death-reason")
    if isinstance(reason, bytes):
        reason = reason.decode()
    return str(reason or "unknown")


def _execution_id(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    found = value.get("executionId") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _describe(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    return DeadLetter(
        queue=queue,
        message_id=message.message_id,
        routing_key=message.type or message.routing_key or "",
        reason=_reason(message),
        execution_id=_execution_id(message.body),
        excerpt=message.body[:160].decode(errors="replace"),
    )


def _queues(queue: str | None) -> list[str]:
    if queue is None:
        return list(BY_DEAD_LETTER_QUEUE)
    name = queue if queue.endswith(".dlq") else f"{queue}.dlq"
    if name not in BY_DEAD_LETTER_QUEUE:
        known = ", ".join(sorted(BY_DEAD_LETTER_QUEUE))
        raise ValueError(f"unknown dead-letter queue {queue!r}; known: {known}")
    return [name]


async def list_dead_letters(
    url: str, *, queue: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Describe up to `limit` messages of each dead-letter queue, leaving them in place."""
    found: list[DeadLetter] = []
    connection = await aio_pika.connect(url)
    try:
        for name in _queues(queue):
            channel = await connection.channel()
            dead = await channel.get_queue(name, ensure=True)
            for _ in range(limit):
                message = await dead.get(no_ack=False, fail=False)
                if message is None:
                    break
                found.append(_describe(name, message))
            await channel.close()  # every message we held goes back, in order
    finally:
        await connection.close()
    return found


async def replay(
    url: str, *, queue: str, message_ids: set[str] | None = None, limit: int = 10_000
) -> int:
    """Send dead letters back to their work queue (all, or those with the given ids).

    Each is republished with publisher confirms before it is acked off the dead-letter queue,
    so a crash in between duplicates (consumers are idempotent) but never loses a message.
    """
    [name] = _queues(queue)
    work = BY_DEAD_LETTER_QUEUE[name]
    replayed = 0
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        dead = await channel.get_queue(name, ensure=True)
        for _ in range(limit):
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            if message_ids is not None and message.message_id not in message_ids:
                continue  # held unacked: returned when the channel closes
            await channel.default_exchange.publish(_copy(message), routing_key=work.name)
            await message.ack()
            replayed += 1
        await channel.close()
    finally:
        await connection.close()
    return replayed


def _copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers: dict[str, Any] = {
        key: value for key, value in (message.headers or {}).items() if key not in _DEATH_HEADERS
    }
    return aio_pika.Message(
        message.body,
        message_id=message.message_id,
        type=message.type or message.routing_key,
        content_type=message.content_type or "application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers,
    )
