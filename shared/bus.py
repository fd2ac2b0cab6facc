"""The message bus: a Protocol and its RabbitMQ implementation (aio-pika, publisher confirms).

Consumption semantics every implementation keeps:
- manual acks: a message is acked only after its handler returned;
- a message that is not a valid event (`InvalidEventError`) is rejected to its dead-letter queue
  at once, with a log line naming why; it is never requeued;
- any other exception requeues it; the queue's delivery limit dead-letters it after a few
  tries, so a crashing handler cannot loop forever;
- a handler that raises `DependencyUnavailableError` (its database is unreachable) is run again
  in place after a pause, the message held unacked: an outage is not the message's fault and
  must not spend the delivery limit, or a few seconds without the database would dead-letter
  every event in flight and leave their executions open;
- a delayed message (the retry ladder) that comes back before its `notBefore` is delayed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import aio_pika
import aiormq.abc
import structlog
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.connection import make_url

from shared import handling, metrics, topology, tracing
from shared.errors import InvalidEventError
from shared.events import Event, decode_event

log = structlog.get_logger(__name__)

Handler = Callable[[Event], Awaitable[None]]
CancelHandler = Callable[[str], None]
PoisonHandler = Callable[[Event, str], Awaitable[None]]


class Bus(Protocol):
    """What services need from a message bus."""

    @property
    def is_ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self, *, grace: float = 10.0) -> None: ...

    async def publish(self, event: Event) -> None: ...

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None: ...

    async def publish_delayed(
        self, event: Event, queue: topology.WorkQueue, not_before: datetime
    ) -> None: ...

    async def consume(
        self,
        queue: topology.WorkQueue,
        handler: Handler,
        *,
        on_poison: PoisonHandler | None = None,
    ) -> None: ...

    async def on_cancelled(self, callback: CancelHandler) -> None: ...


class _AmqpSettlement:
    def __init__(self, message: AbstractIncomingMessage) -> None:
        self._message = message

    async def ack(self) -> None:
        await self._message.ack()

    async def dead_letter(self, reason: str) -> None:
        # The queue's dead-letter exchange takes it; the reason is in the logs and metrics.
        await self._message.reject(requeue=False)

    async def requeue(self, pause: float) -> None:
        # The broker counts the delivery (x-delivery-count) when the message comes back.
        await asyncio.sleep(pause)
        await self._message.nack(requeue=True)


def connection_name(service: str) -> str:
    """Name a connection so the management UI shows which process holds it."""
    return f"herald-{service}@{socket.gethostname()}:{os.getpid()}"


class AmqpBus:
    """The RabbitMQ bus: one robust connection, a publishing channel with confirms."""

    def __init__(
        self, url: str, *, service: str, prefetch: int = 16, delivery_limit: int = 5
    ) -> None:
        self._url = url
        self._service = service
        self._prefetch = prefetch
        self._delivery_limit = delivery_limit
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[Any, str]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    @property
    def is_ready(self) -> bool:
        # A robust connection is never "closed" while it reconnects: ask whether it is up.
        return self._connection is not None and self._connection.connected.is_set()

    async def start(self) -> None:
        self._closing.clear()
        connection = aio_pika.RobustConnection(
            make_url(self._url),
            client_properties={"connection_name": connection_name(self._service)},
        )
        try:
            await connection.connect(timeout=10)
        except BaseException:
            # A robust connection keeps retrying in the background unless closed.
            await connection.close()
            raise
        self._connection = connection
        channel = await self._connection.channel(publisher_confirms=True)
        assert isinstance(channel, AbstractRobustChannel)
        self._publish_channel = channel
        self._exchange = await declare_topology(channel, delivery_limit=self._delivery_limit)

    async def close(self, *, grace: float = 10.0) -> None:
        """Stop consuming, let in-flight handlers finish, then close the connection."""
        self._closing.set()  # a handler waiting for its database stops waiting
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers.clear()
        if self._in_flight:
            _, unfinished = await asyncio.wait(self._in_flight, timeout=grace)
            # Unacked, these are redelivered to another consumer once the connection closes.
            for task in unfinished:
                task.cancel()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @property
    def exchange_name(self) -> str:
        return topology.EXCHANGE

    async def publishing_channel(self) -> aiormq.abc.AbstractChannel:
        """The publishing channel's current AMQP channel (a new one after a reconnect), with
        confirms on, for a publisher that writes its own frames (the scheduler's batches)."""
        assert self._publish_channel is not None, "bus not started"
        return await self._publish_channel.get_underlay_channel()

    async def publish(self, event: Event) -> None:
        await self.publish_raw(event.routing_key, event.to_json(), message_id=event.event_id)

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        assert self._exchange is not None, "bus not started"
        if not tracing.enabled():  # off, the message is built as before tracing existed
            await self._exchange.publish(_message(routing_key, body, message_id), routing_key)
            metrics.MESSAGES_PUBLISHED.labels(routing_key=routing_key).inc()
            return
        with tracing.producing(
            topology.EXCHANGE, routing_key, message_id=message_id, size=len(body)
        ) as trace_headers:
            await self._exchange.publish(
                _message(routing_key, body, message_id, trace_headers), routing_key
            )
        metrics.MESSAGES_PUBLISHED.labels(routing_key=routing_key).inc()

    async def publish_delayed(
        self, event: Event, queue: topology.WorkQueue, not_before: datetime
    ) -> None:
        body = event.to_json()
        wait = (not_before - datetime.now(UTC)).total_seconds()
        step = topology.delay_step_for(wait) or topology.DELAY_LADDER[0]
        # The retry's trace goes on from the step that asked for it, however long it waits.
        with tracing.producing(
            "", step.name, message_id=event.event_id, size=len(body)
        ) as trace_headers:
            await self._delay(
                event.routing_key, body, event.event_id, queue, not_before, trace_headers
            )

    async def _delay(
        self,
        routing_key: str,
        body: bytes,
        message_id: str | None,
        queue: topology.WorkQueue,
        not_before: datetime,
        trace_headers: dict[str, str],
    ) -> None:
        assert self._publish_channel is not None, "bus not started"
        wait = (not_before - datetime.now(UTC)).total_seconds()
        step = topology.delay_step_for(wait) or topology.DELAY_LADDER[0]
        message = _message(
            routing_key,
            body,
            message_id,
            headers={
                topology.TARGET_QUEUE_HEADER: queue.name,
                topology.NOT_BEFORE_HEADER: not_before.isoformat(),
                **trace_headers,
            },
        )
        await self._publish_channel.default_exchange.publish(message, step.name)
        metrics.MESSAGES_DELAYED.labels(step=step.name).inc()

    async def consume(
        self,
        queue: topology.WorkQueue,
        handler: Handler,
        *,
        on_poison: PoisonHandler | None = None,
    ) -> None:
        """Consume a work queue; `on_poison` hears of a valid event about to be dead-lettered."""
        assert self._connection is not None, "bus not started"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        amqp_queue = await channel.get_queue(queue.name, ensure=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._in_flight.add(task)
            try:
                await self._handle(queue, message, handler, on_poison)
            finally:
                self._in_flight.discard(task)

        tag = await amqp_queue.consume(on_message)
        self._consumers.append((amqp_queue, tag))

    async def _handle(
        self,
        queue: topology.WorkQueue,
        message: AbstractIncomingMessage,
        handler: Handler,
        on_poison: PoisonHandler | None,
    ) -> None:
        routing_key = message.type or message.routing_key or ""
        not_before = _not_before(message)
        if not_before is not None:
            wait = (not_before - datetime.now(UTC)).total_seconds()
            if wait >= 1:
                # Back from the ladder too early: take the largest step that still fits, its
                # trace context carried along as it came.
                await self._delay(
                    routing_key,
                    message.body,
                    message.message_id,
                    queue,
                    not_before,
                    tracing.trace_headers(message.headers),
                )
                await message.ack()
                return
            if wait > 0:
                await asyncio.sleep(wait)
        await handling.handle(
            queue,
            routing_key,
            message.body,
            message.message_id,
            delivery=_delivery_count(message) + 1,
            delivery_limit=self._delivery_limit,
            handler=handler,
            on_poison=on_poison,
            closing=self._closing,
            settlement=_AmqpSettlement(message),
            trace_headers=message.headers,
        )

    async def on_cancelled(self, callback: CancelHandler) -> None:
        assert self._connection is not None, "bus not started"
        channel = await self._connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(topology.EXCHANGE, topology.CANCELLED_KEY)

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process(ignore_processed=True):
                try:
                    event = decode_event(topology.CANCELLED_KEY, message.body)
                except InvalidEventError:
                    return
                callback(event.execution_id)

        tag = await queue.consume(on_message)
        self._consumers.append((queue, tag))


async def declare_topology(
    channel: aio_pika.abc.AbstractChannel, *, delivery_limit: int
) -> AbstractExchange:
    """Declare every exchange, queue and binding; idempotent, safe from any process."""
    exchange = await channel.declare_exchange(
        topology.EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dlx = await channel.declare_exchange(
        topology.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    retry = await channel.declare_exchange(
        topology.RETRY_EXCHANGE, aio_pika.ExchangeType.HEADERS, durable=True
    )
    for work in topology.WORK_QUEUES:
        queue = await channel.declare_queue(
            work.name,
            durable=True,
            arguments=topology.work_queue_arguments(work, delivery_limit=delivery_limit),
        )
        for key in work.routing_keys:
            await queue.bind(exchange, key)
        await queue.bind(retry, "", arguments=topology.retry_binding_arguments(work))
        dead = await channel.declare_queue(
            work.dead_letter_queue,
            durable=True,
            arguments=topology.dead_letter_queue_arguments(),
        )
        await dead.bind(dlx, work.dead_letter_queue)
    for step in topology.DELAY_LADDER:
        await channel.declare_queue(
            step.name, durable=True, arguments=topology.delay_queue_arguments(step)
        )
    return exchange


def _message(
    routing_key: str,
    body: bytes,
    message_id: str | None,
    headers: Mapping[str, Any] | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        message_id=message_id,
        type=routing_key,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=dict(headers) if headers else {},
    )


def _not_before(message: AbstractIncomingMessage) -> datetime | None:
    raw = (message.headers or {}).get(topology.NOT_BEFORE_HEADER)
    if not isinstance(raw, str | bytes):
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _delivery_count(message: AbstractIncomingMessage) -> int:
    raw = (message.headers or {}).get("x-delivery-count", 0)
    return raw if isinstance(raw, int) else 0
