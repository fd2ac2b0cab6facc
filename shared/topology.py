"""The RabbitMQ topology, declared once: every queue and exchange name lives here.

- `herald` (topic): every event, routed by `<entity>.<event>`.
- one durable quorum work queue per consuming service, with an explicit delivery limit and a
  dead-letter queue of its own (through the direct exchange `herald.dlx`);
- the delay ladder: TTL quorum queues that dead-letter back, through the headers exchange
  `herald.retry`, to the one work queue named in the message's `herald-queue` header, so a
  retry reaches only the consumer that asked for it, not every subscriber of the routing key;
- per process, a server-named exclusive queue bound to `execution.cancelled` (a fan-out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXCHANGE = "herald"
DEAD_LETTER_EXCHANGE = "herald.dlx"
RETRY_EXCHANGE = "herald.retry"
TARGET_QUEUE_HEADER = "herald-queue"
NOT_BEFORE_HEADER = "herald-not-before"
CANCELLED_KEY = "execution.cancelled"


@dataclass(frozen=True)
class WorkQueue:
    name: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"


SCANNER_QUEUE = WorkQueue("herald.scanner", ("job.due",))
GENERATOR_QUEUE = WorkQueue("herald.generator", ("activity.scanned",))
API_QUEUE = WorkQueue(
    "herald.api",
    (
        "step.started",
        "step.failed",
        "step.waiting",
        "activity.scanned",
        "content.generated",
        "notification.created",
        "notification.delivery",
        "post.published",
        "post.failed",
    ),
)
NOTIFIER_QUEUE = WorkQueue(
    "herald.notifier",
    (
        "execution.finished",
        "schedule.moved",
        "recipient.confirmation_requested",
        "post.unpublished",
    ),
)
PUBLISHER_QUEUE = WorkQueue("herald.publisher", ("post.due",))
WORK_QUEUES = (SCANNER_QUEUE, GENERATOR_QUEUE, API_QUEUE, NOTIFIER_QUEUE, PUBLISHER_QUEUE)


@dataclass(frozen=True)
class DelayStep:
    name: str
    seconds: int


DELAY_LADDER = tuple(
    DelayStep(f"herald.delay.{label}", seconds)
    for label, seconds in (("1s", 1), ("10s", 10), ("1m", 60), ("5m", 300), ("30m", 1800))
)


def delay_step_for(seconds: float) -> DelayStep | None:
    """Return the largest ladder step that does not overshoot `seconds`, or None if under 1 s."""
    fitting = [step for step in DELAY_LADDER if step.seconds <= seconds]
    return fitting[-1] if fitting else None


def work_queue_arguments(queue: WorkQueue, *, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": queue.dead_letter_queue,
        # at-least-once dead-lettering needs reject-publish; a poison message is never lost.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum"}


def delay_queue_arguments(step: DelayStep) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": step.seconds * 1000,
        "x-dead-letter-exchange": RETRY_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def retry_binding_arguments(queue: WorkQueue) -> dict[str, Any]:
    return {"x-match": "all", TARGET_QUEUE_HEADER: queue.name}
