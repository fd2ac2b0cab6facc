"""The in-process bus of the standalone mode: the `Bus` Protocol without a broker.

It keeps what the services rely on in RabbitMQ (see `shared.bus`):
- routing by key to the work queues of `shared.topology`, each message copied to every queue
  bound to its key (`activity.scanned` reaches the generator and the api);
- manual acks: a message leaves its queue only when its handler returned, and messages are
  kept in a `QueueStore` until then, so a stopped or killed process redoes unacked work;
- an invalid event is dead-lettered at once; a handler that raises is redelivered after a short
  pause, and dead-lettered (kept, with its reason, and `on_poison` told) past the delivery limit;
  one that finds its dependency unavailable is run again in place, without spending that limit;
- delayed retries: a delayed message reaches only the queue that asked, not before `notBefore`
  (a timer instead of the TTL ladder: one process needs no broker-side clock);
- `execution.cancelled` fans out to every process-local subscriber, unstored, like the
  exclusive auto-delete queues it stands for.

One `MemoryBroker` per process holds the queues; each service gets its own `MemoryBus`
client, which it starts and closes as it would a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import structlog

from services.standalone.queuestore import QueueStore, StoredMessage
from shared import handling, metrics, topology, tracing
from shared.bus import CancelHandler, Handler, PoisonHandler
from shared.errors import InvalidEventError
from shared.events import Event, decode_event

log = structlog.get_logger(__name__)


class MemoryBroker:
    """The topology's work queues in this process, backed by a `QueueStore`."""

    def __init__(self, store: QueueStore, *, prefetch: int = 16, delivery_limit: int = 5) -> None:
        self.store = store
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self._ready: dict[str, asyncio.Queue[StoredMessage]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._cancel_callbacks: list[CancelHandler] = []
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> int:
        """Open the store and queue again every unacked message; return how many."""
        self._ready = {queue.name: asyncio.Queue() for queue in topology.WORK_QUEUES}
        pending = await self.store.open()
        for message in pending:
            if message.queue in self._ready:
                self._enqueue(message)
        self._open = True
        return len(pending)

    async def close(self) -> None:
        self._open = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self.store.close()

    def client(self) -> MemoryBus:
        return MemoryBus(self)

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        message_id: str | None,
        traceparent: str | None = None,
    ) -> None:
        """Route a message by its key; stored before this returns."""
        self.ensure_open()
        if routing_key == topology.CANCELLED_KEY:
            self._fan_out_cancelled(body)
        messages = [
            StoredMessage(
                queue=queue.name,
                routing_key=routing_key,
                body=body,
                message_id=message_id,
                traceparent=traceparent,
            )
            for queue in topology.WORK_QUEUES
            if routing_key in queue.routing_keys
        ]
        await self.store.add(messages)
        for message in messages:
            self._enqueue(message)
        metrics.MESSAGES_PUBLISHED.labels(routing_key=routing_key).inc()

    async def publish_delayed(
        self,
        routing_key: str,
        body: bytes,
        message_id: str | None,
        queue: topology.WorkQueue,
        not_before: datetime,
        traceparent: str | None = None,
    ) -> None:
        """Deliver a message to `queue` alone, not before `not_before`."""
        self.ensure_open()
        message = StoredMessage(
            queue=queue.name,
            routing_key=routing_key,
            body=body,
            message_id=message_id,
            not_before=not_before,
            traceparent=traceparent,
        )
        await self.store.add([message])
        self._enqueue(message)
        wait = (not_before - datetime.now(UTC)).total_seconds()
        step = topology.delay_step_for(wait) or topology.DELAY_LADDER[0]
        metrics.MESSAGES_DELAYED.labels(step=step.name).inc()

    def ready_queue(self, queue: topology.WorkQueue) -> asyncio.Queue[StoredMessage]:
        return self._ready[queue.name]

    def subscribe_cancelled(self, callback: CancelHandler) -> None:
        self._cancel_callbacks.append(callback)

    def unsubscribe_cancelled(self, callback: CancelHandler) -> None:
        with contextlib.suppress(ValueError):
            self._cancel_callbacks.remove(callback)

    def requeue(self, message: StoredMessage) -> None:
        """Put a message delivered but not acked back at the end of its queue."""
        if self._open:
            self._ready[message.queue].put_nowait(message)

    def _enqueue(self, message: StoredMessage) -> None:
        wait = 0.0
        if message.not_before is not None:
            wait = (message.not_before - datetime.now(UTC)).total_seconds()
        if wait <= 0:
            self._ready[message.queue].put_nowait(message)
            return
        loop = asyncio.get_running_loop()

        def release() -> None:
            self._timers.discard(timer)
            self.requeue(message)

        timer = loop.call_later(wait, release)
        self._timers.add(timer)

    def _fan_out_cancelled(self, body: bytes) -> None:
        try:
            event = decode_event(topology.CANCELLED_KEY, body)
        except InvalidEventError:
            return
        for callback in list(self._cancel_callbacks):
            callback(event.execution_id)

    def ensure_open(self) -> None:
        if not self._open:
            raise ConnectionError("the in-process broker is closed")


class MemoryBus:
    """One service's connection to the in-process broker; implements `shared.bus.Bus`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._started = False
        self._consumers: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._cancel_callbacks: list[CancelHandler] = []
        self._closing = asyncio.Event()

    @property
    def is_ready(self) -> bool:
        return self._started and self._broker.is_open

    async def start(self) -> None:
        self._broker.ensure_open()
        self._closing.clear()
        self._started = True

    async def close(self, *, grace: float = 10.0) -> None:
        """Stop consuming, let in-flight handlers finish, then let go of the broker."""
        self._started = False
        self._closing.set()  # a handler waiting for its database stops waiting
        for consumer in self._consumers:
            consumer.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
        for callback in self._cancel_callbacks:
            self._broker.unsubscribe_cancelled(callback)
        self._cancel_callbacks.clear()
        if self._in_flight:
            _, unfinished = await asyncio.wait(self._in_flight, timeout=grace)
            # Unacked, these stay stored and queued: delivered again (now or at next start).
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def publish(self, event: Event) -> None:
        await self.publish_raw(event.routing_key, event.to_json(), message_id=event.event_id)

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        with tracing.producing(
            topology.EXCHANGE, routing_key, message_id=message_id, size=len(body)
        ) as headers:
            await self._broker.publish(
                routing_key, body, message_id, headers.get(tracing.TRACEPARENT)
            )

    async def publish_delayed(
        self, event: Event, queue: topology.WorkQueue, not_before: datetime
    ) -> None:
        body = event.to_json()
        # A timer stands for the ladder here; the destination is still the queue that asked.
        with tracing.producing(
            "", queue.name, message_id=event.event_id, size=len(body)
        ) as headers:
            await self._broker.publish_delayed(
                event.routing_key,
                body,
                event.event_id,
                queue,
                not_before,
                headers.get(tracing.TRACEPARENT),
            )

    async def consume(
        self,
        queue: topology.WorkQueue,
        handler: Handler,
        *,
        on_poison: PoisonHandler | None = None,
    ) -> None:
        """Consume a work queue, at most `prefetch` messages at once."""
        assert self._started, "bus not started"
        ready = self._broker.ready_queue(queue)
        slots = asyncio.Semaphore(self._broker.prefetch)

        async def dispatch() -> None:
            while True:
                await slots.acquire()
                try:
                    message = await ready.get()
                except BaseException:
                    slots.release()
                    raise
                task = asyncio.create_task(self._deliver(queue, message, handler, on_poison))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                task.add_done_callback(lambda _task: slots.release())

        self._consumers.append(asyncio.create_task(dispatch()))

    async def on_cancelled(self, callback: CancelHandler) -> None:
        self._broker.subscribe_cancelled(callback)
        self._cancel_callbacks.append(callback)

    async def _deliver(
        self,
        queue: topology.WorkQueue,
        message: StoredMessage,
        handler: Handler,
        on_poison: PoisonHandler | None,
    ) -> None:
        try:
            await handling.handle(
                queue,
                message.routing_key,
                message.body,
                message.message_id,
                delivery=message.deliveries + 1,
                delivery_limit=self._broker.delivery_limit,
                handler=handler,
                on_poison=on_poison,
                closing=self._closing,
                settlement=_StoredSettlement(self._broker, queue, message),
                trace_headers=(
                    {tracing.TRACEPARENT: message.traceparent} if message.traceparent else None
                ),
            )
        except asyncio.CancelledError:
            self._broker.requeue(message)
            raise


class _StoredSettlement:
    def __init__(
        self, broker: MemoryBroker, queue: topology.WorkQueue, message: StoredMessage
    ) -> None:
        self._broker = broker
        self._queue = queue
        self._message = message

    async def ack(self) -> None:
        await self._broker.store.remove(self._message)

    async def dead_letter(self, reason: str) -> None:
        await self._broker.store.dead_letter(self._message, self._queue.dead_letter_queue, reason)

    async def requeue(self, pause: float) -> None:
        # Counted before the pause: a stop or a kill meanwhile must not forget the failure.
        self._message.deliveries += 1
        await self._broker.store.count_delivery(self._message)
        await asyncio.sleep(pause)
        self._broker.requeue(self._message)
