"""The scheduler's bus: publishes an outbox batch as one write of frames, confirmed together.

The outbox relay hands it a whole batch (`publish_many`). With `HERALD_SCHEDULER_FRAMES` on
(the default) the batch goes out through `frames.publish_confirmed`, which leans on aiormq's
internals (pinned in pyproject.toml; `make test-aiormq-latest` runs its tests against the
newest release); off, each message is published through aio-pika's public API, concurrently,
as every other service does. Either way the wait for the broker's confirms is bounded by
`HERALD_SCHEDULER_CONFIRM_TIMEOUT`: the relay holds its rows locked meanwhile, and a batch
not confirmed in time fails (its rows stay pending and go out again; consumers drop a
message that arrives twice by its id). Each scheduled fire's lateness is observed on the way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiormq
import structlog

from services.scheduler.frames import publish_confirmed
from services.scheduler.lateness import observe_batch_lateness, observe_lateness
from shared import metrics, topology, tracing
from shared.bus import AmqpBus
from shared.events import JobDue
from shared.outbox import Outgoing, publish_in_context

log = structlog.get_logger(__name__)


class BatchPublishingBus(AmqpBus):
    """An AmqpBus that publishes a relay batch at once and times each scheduled fire."""

    def __init__(
        self,
        *args: Any,
        clock: Callable[[], datetime],
        frames: bool = True,
        confirm_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock
        self._frames = frames
        self._confirm_timeout = confirm_timeout

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        async with asyncio.timeout(self._confirm_timeout):
            await super().publish_raw(routing_key, body, message_id=message_id)
        if routing_key == JobDue.routing_key:
            observe_lateness(body, self._clock())

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish a batch; return once the broker confirmed every message of it."""
        try:
            async with asyncio.timeout(self._confirm_timeout):
                if self._frames:
                    await self._publish_frames(messages)
                else:
                    await asyncio.gather(
                        *(
                            publish_in_context(
                                _PlainPublisher(self),
                                m.routing_key,
                                m.body,
                                m.message_id,
                                m.traceparent,
                            )
                            for m in messages
                        )
                    )
        except TimeoutError as exc:
            raise TimeoutError(
                f"the broker did not confirm a batch of {len(messages)} messages "
                f"within {self._confirm_timeout:g} s"
            ) from exc
        now = self._clock()
        if self._frames:
            counts = Counter(message.routing_key for message in messages)
            for routing_key, count in counts.items():
                metrics.MESSAGES_PUBLISHED.labels(routing_key=routing_key).inc(count)
        try:
            observe_batch_lateness(
                (m.body for m in messages if m.routing_key == JobDue.routing_key), now
            )
        except Exception as exc:  # the batch is published: a metric must not make it fail
            log.warning("fire lateness not recorded", error=str(exc))

    async def _publish_frames(self, messages: Sequence[Outgoing]) -> None:
        channel = await self.publishing_channel()
        assert isinstance(channel, aiormq.Channel)
        if not tracing.enabled():
            await publish_confirmed(channel, self.exchange_name, messages)
            return
        # One producer span per message, each a child of the context its outbox row was
        # written in, ended when the batch's confirms came back (or failed).
        spans = [
            tracing.start_producer(
                topology.EXCHANGE,
                m.routing_key,
                message_id=m.message_id,
                size=len(m.body),
                parent=m.traceparent,
            )
            for m in messages
        ]
        headers: list[dict[str, str]] = []
        for span in spans:
            carrier: dict[str, str] = {}
            tracing.inject(carrier, span)
            headers.append(carrier)
        try:
            await publish_confirmed(channel, self.exchange_name, messages, headers)
        except BaseException as exc:
            for span in spans:
                tracing.end(span, exc)
            raise
        for span in spans:
            tracing.end(span)


class _PlainPublisher:
    """The batch's messages one by one through aio-pika (HERALD_SCHEDULER_FRAMES=false),
    without this bus's per-message timeout and lateness (the batch has its own)."""

    def __init__(self, bus: AmqpBus) -> None:
        self._bus = bus

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        await AmqpBus.publish_raw(self._bus, routing_key, body, message_id=message_id)
