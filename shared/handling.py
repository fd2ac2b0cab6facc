"""What becomes of a consumed message: one rule for RabbitMQ's bus and the in-process one.

`decide` is the rule, pure: a message handled is acked; one that is not a valid event of a
known version, or whose handler says its event is invalid, is dead-lettered at once; one whose
handler failed is requeued after a short pause, until the delivery past the limit, which is
dead-lettered (and `on_poison` told, so its execution ends FAILED). `handle` runs a message
through decoding and its handler (waiting out an unavailable dependency, which spends no
delivery), applies the rule with its logs and metrics, and leaves the broker's part to the
bus's `Settlement`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog

from shared import metrics, topology, tracing
from shared.errors import DependencyUnavailableError, InvalidEventError
from shared.events import Event, decode_event
from shared.retry import compute_backoff
from shared.runtime import pause

if TYPE_CHECKING:
    from shared.bus import Handler, PoisonHandler

log = structlog.get_logger(__name__)

# Pauses, seconds, between runs of a handler waiting for its dependency: short at first, so a
# blip costs little, then capped so a long outage costs a log line every few seconds.
UNAVAILABLE_PAUSE = 0.5
UNAVAILABLE_PAUSE_MAX = 5.0


def requeue_pause(deliveries: int) -> float:
    """Seconds before a failed message goes back to its queue: a crashing handler must not
    spin through its delivery limit (0.2 s, doubling to 2 s)."""
    return compute_backoff(deliveries, base=0.2, max_backoff=2.0, floor=0.0)


async def run_until_available(
    handler: Handler, event: Event, bound: Any, closing: asyncio.Event
) -> None:
    """Run the handler; while it finds its dependency unavailable, pause and run it again.

    Gives up (raising) only when the bus closes (`closing` set): the message is then requeued
    like any failure, for another consumer or the next start. Waiting spends none of the
    message's delivery limit, so an outage longer than the limit dead-letters nothing.
    """
    waits = 0
    while True:
        try:
            await handler(event)
            return
        except DependencyUnavailableError as exc:
            if closing.is_set():
                raise
            waits += 1
            wait = compute_backoff(
                waits, base=UNAVAILABLE_PAUSE, max_backoff=UNAVAILABLE_PAUSE_MAX, floor=0.0
            )
            bound.warning(
                "dependency unavailable; handler waits", error=exc.message, retry_in=round(wait, 2)
            )
            await pause(wait, closing)


@dataclass(frozen=True)
class Outcome:
    action: Literal["ack", "dead_letter", "requeue"]
    #: Why a dead letter is one, as logged and kept with it.
    reason: str = ""
    #: The `reason` label of `herald_messages_dead_lettered_total`.
    kind: Literal["", "invalid", "handler_failed"] = ""
    #: Seconds before a requeue.
    pause: float = 0.0


ACK = Outcome("ack")


def decide(failure: Exception | None, *, delivery: int, delivery_limit: int) -> Outcome:
    """The fate of delivery number `delivery` (from 1) of a message whose handling ended in
    `failure` (None: handled)."""
    if failure is None:
        return ACK
    if isinstance(failure, InvalidEventError):
        return Outcome("dead_letter", failure.message, "invalid")
    if delivery > delivery_limit:
        reason = f"dead-lettered after {delivery} failed deliveries: {failure!r}"
        return Outcome("dead_letter", reason, "handler_failed")
    return Outcome("requeue", pause=requeue_pause(delivery))


class Settlement(Protocol):
    """A bus's part: what settling one message means on its broker."""

    async def ack(self) -> None: ...

    async def dead_letter(self, reason: str) -> None: ...

    async def requeue(self, pause: float) -> None:
        """Put the message back after `pause` seconds (a crashing handler must not spin
        through its delivery limit), its failed delivery counted first."""
        ...


async def handle(
    queue: topology.WorkQueue,
    routing_key: str,
    body: bytes,
    message_id: str | None,
    *,
    delivery: int,
    delivery_limit: int,
    handler: Handler,
    on_poison: PoisonHandler | None,
    closing: asyncio.Event,
    settlement: Settlement,
    trace_headers: Mapping[str, Any] | None = None,
) -> Outcome:
    """Decode, handle and settle delivery number `delivery` of a message; return its fate.

    With tracing on, all of it runs in the message's consumer span (`trace_headers` name the
    span that sent it): the handler's requests, messages and log lines join its trace.
    """
    if not tracing.enabled():  # off, not even a context manager per message
        return await _handle(
            queue,
            routing_key,
            body,
            message_id,
            delivery=delivery,
            delivery_limit=delivery_limit,
            handler=handler,
            on_poison=on_poison,
            closing=closing,
            settlement=settlement,
        )
    with tracing.consuming(
        queue.name,
        routing_key,
        trace_headers,
        message_id=message_id,
        size=len(body),
        delivery=delivery,
    ) as span:
        outcome = await _handle(
            queue,
            routing_key,
            body,
            message_id,
            delivery=delivery,
            delivery_limit=delivery_limit,
            handler=handler,
            on_poison=on_poison,
            closing=closing,
            settlement=settlement,
        )
        if outcome.action != "ack":
            tracing.failed(
                span, outcome.reason or "handler failed; requeued", outcome.kind or "requeued"
            )
        return outcome


async def _handle(
    queue: topology.WorkQueue,
    routing_key: str,
    body: bytes,
    message_id: str | None,
    *,
    delivery: int,
    delivery_limit: int,
    handler: Handler,
    on_poison: PoisonHandler | None,
    closing: asyncio.Event,
    settlement: Settlement,
) -> Outcome:
    bound = log.bind(queue=queue.name, routing_key=routing_key, message_id=message_id)
    event: Event | None = None
    failure: Exception | None = None
    try:
        event = decode_event(routing_key, body)
    except InvalidEventError as exc:
        failure = exc  # dead-lettered below, as a handler's invalid event is
    ids = (
        {}
        if event is None
        else {
            "execution_id": event.execution_id,
            "job_id": event.job_id,
            "event_id": event.event_id,
        }
    )
    with structlog.contextvars.bound_contextvars(**ids):
        if event is not None:
            try:
                await run_until_available(handler, event, bound, closing)
            except Exception as exc:
                failure = exc
        outcome = decide(failure, delivery=delivery, delivery_limit=delivery_limit)
        if outcome.action == "ack":
            await settlement.ack()
            metrics.MESSAGES_CONSUMED.labels(queue=queue.name, outcome="ok").inc()
        elif outcome.action == "requeue":
            bound.error(
                "handler failed; message requeued",
                delivery=delivery,
                delivery_limit=delivery_limit,
                exc_info=failure,
            )
            metrics.MESSAGES_CONSUMED.labels(queue=queue.name, outcome="error").inc()
            await settlement.requeue(outcome.pause)
        elif outcome.kind == "invalid":
            bound.error("message dead-lettered", reason=outcome.reason)
            metrics.MESSAGES_DEAD_LETTERED.labels(queue=queue.name, reason=outcome.kind).inc()
            await settlement.dead_letter(outcome.reason)
        else:
            bound.error(
                "message dead-lettered: its handler keeps failing",
                delivery=delivery,
                exc_info=failure,
            )
            metrics.MESSAGES_DEAD_LETTERED.labels(queue=queue.name, reason=outcome.kind).inc()
            if on_poison is not None:
                assert event is not None  # only a decoded event's handler fails so
                await on_poison(event, outcome.reason)
            await settlement.dead_letter(outcome.reason)
    return outcome
