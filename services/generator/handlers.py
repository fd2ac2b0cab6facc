"""The generator's subscriber: `activity.scanned` in, `content.generated` out.

A retry reruns only the platforms still pending (DESIGN: retries): when some platforms failed
transiently and the job has retries left, the generator itself sends a copy of the event
through the delay ladder whose `summary.postsDone` carries the posts already finished, and
publishes a non-final `step.failed`. `content.generated` goes out once, with every platform's
result, when nothing is pending any more or the retries are exhausted (then the pending
platforms count as failed). When no platform produced a post the step fails instead.

A WEBHOOK job then delivers the run (`services.generator.delivery`): one attempt per pass.
A network error, a 5xx or a 429 sends the event round the ladder the same way, its posts
all finished on `summary.postsDone`, so the retry writes nothing again and only delivers
(its timeline step is `deliver`). `content.generated` carries the delivery's outcome; the
api ends the run FAILED when it failed for good.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from services.generator.budget import ModelBudget
from services.generator.delivery import Answer, Deliverer, delivery_id_of
from services.generator.generate import Outcome, generate_posts
from services.generator.providers import Provider
from shared import topology
from shared.bus import Bus, Handler
from shared.cancellation import CancelledSet
from shared.errors import ConfigurationError, PermanentError, TransientError
from shared.events import (
    ActivityScanned,
    ContentGenerated,
    DeliveryResult,
    Event,
    JobType,
    PostResult,
    Step,
    StepFailed,
    StepStarted,
)
from shared.ids import derived_event_id
from shared.metrics import POSTS_GENERATED, WEBHOOK_DELIVERIES
from shared.platforms import PLATFORMS
from shared.retry import compute_backoff
from shared.steps import run_step, wait_reporter

log = structlog.get_logger(__name__)


def make_handler(
    bus: Bus,
    cancelled: CancelledSet,
    provider: Provider | ConfigurationError | None = None,
    *,
    call_retries: int = 2,
    max_wait: float = 10.0,
    budget: ModelBudget | None = None,
    deliverer: Deliverer | None = None,
) -> Handler:
    async def on_activity_scanned(event: Event) -> None:
        assert isinstance(event, ActivityScanned)
        if event.skip_reason is not None:
            return  # the job's conditions were not met: the API ends the run SKIPPED
        if not event.job_type.generates:
            return  # the job records or digests its activity: the API ends the run
        if event.summary.is_empty:
            return  # nothing to write about: the API completes the execution with zero items

        async def work() -> ContentGenerated | None:
            if isinstance(provider, ConfigurationError):
                raise provider
            outcome = await generate_posts(
                event,
                provider=provider,
                cancelled=cancelled,
                call_retries=call_retries,
                max_wait=max_wait,
                budget=budget,
                report=wait_reporter(bus, event, Step.GENERATE),
            )
            done = [*event.summary.posts_done, *outcome.done]
            if outcome.pending and event.attempt <= event.retry_policy.max_retries:
                await _retry_pending(bus, event, done, outcome)
                return None
            posts = final_posts(event, done, outcome)
            delivery = None
            if event.job_type is JobType.WEBHOOK:
                delivery = await _deliver(bus, event, posts, deliverer)
                if delivery is None:
                    return None  # a retry of the delivery alone is on its way
            return content_generated(event, posts, delivery)

        await run_step(
            bus,
            event,
            # A pass that only delivers again (its posts all written) is the deliver step.
            step=Step.DELIVER if event.delivery_attempts else Step.GENERATE,
            queue=topology.GENERATOR_QUEUE,
            cancelled=cancelled,
            work=work,
        )

    return on_activity_scanned


def final_posts(
    event: ActivityScanned, done: list[PostResult], outcome: Outcome
) -> list[PostResult]:
    """Every platform's result, pending ones failed; or raise when no post came out at all."""
    results = {post.platform: post for post in done}
    for name, exc in outcome.pending.items():
        results[name] = PostResult(
            platform=name, status="FAILED", error=f"retries exhausted: {exc.message}"
        )
    ordered = [results[name] for name in dict.fromkeys(event.platforms) if name in results]
    if not any(post.status == "GENERATED" for post in ordered):
        errors = "; ".join(f"{post.platform}: {post.error}" for post in ordered)
        message = f"no post generated: {errors}"
        # Pending platforms were retriable: the step's own retries are spent by now.
        raise TransientError(message) if outcome.pending else PermanentError(message)
    return ordered


def content_generated(
    event: ActivityScanned, posts: list[PostResult], delivery: DeliveryResult | None = None
) -> ContentGenerated:
    """The step's one result: every platform's post, and a WEBHOOK job's delivery."""
    for post in posts:
        label = post.platform if post.platform in PLATFORMS else "unknown"
        POSTS_GENERATED.labels(label, post.status).inc()
    return ContentGenerated(
        event_id=derived_event_id(event.event_id, "content.generated"),
        **event.envelope(),
        results=posts,
        generation_ms=sum(post.generation_ms for post in posts),
        delivery=delivery,
    )


async def _deliver(
    bus: Bus, event: ActivityScanned, posts: list[PostResult], deliverer: Deliverer | None
) -> DeliveryResult | None:
    """One delivery attempt: its result, or None when a retry was sent round the ladder."""
    delivery_id = delivery_id_of(event.execution_id)
    attempts = event.delivery_attempts + 1
    if event.delivery_attempts == 0:
        await bus.publish(
            StepStarted(
                event_id=derived_event_id(event.event_id, f"{Step.DELIVER}.started"),
                **event.envelope(),
                step=Step.DELIVER,
            )
        )
    if deliverer is None:
        answer, host = Answer(False, False, error="this generator cannot deliver webhooks"), ""
    else:
        answer, host = await deliverer.deliver(event, posts, delivery_id=delivery_id)
    if answer.delivered:
        WEBHOOK_DELIVERIES.labels("delivered").inc()
        return DeliveryResult(
            delivery_id=delivery_id,
            outcome="DELIVERED",
            host=host,
            attempts=attempts,
            status_code=answer.status_code,
        )
    if answer.retriable and event.attempt <= event.retry_policy.max_retries:
        WEBHOOK_DELIVERIES.labels("retried").inc()
        await _send_round(
            bus,
            event,
            step=Step.DELIVER,
            error=f"delivery to {host}, attempt {attempts}: {answer.error}",
            retry_after=answer.retry_after,
            update={
                "summary": event.summary.model_copy(update={"posts_done": posts}),
                "delivery_attempts": attempts,
            },
        )
        return None
    WEBHOOK_DELIVERIES.labels("failed").inc()
    spent = " (retries exhausted)" if answer.retriable else ""
    return DeliveryResult(
        delivery_id=delivery_id,
        outcome="FAILED",
        host=host,
        attempts=attempts,
        status_code=answer.status_code,
        error=f"{answer.error}{spent}",
    )


async def _retry_pending(
    bus: Bus, event: ActivityScanned, done: list[PostResult], outcome: Outcome
) -> None:
    """Send the event round the delay ladder with the finished posts, like run_step's retry."""
    waits = [exc.retry_after for exc in outcome.pending.values() if exc.retry_after is not None]
    error = "; ".join(f"{name}: {exc.message}" for name, exc in outcome.pending.items())
    log.warning("platforms pending a retry", platforms=sorted(outcome.pending), error=error)
    await _send_round(
        bus,
        event,
        step=Step.GENERATE,
        error=f"{len(outcome.pending)} platform(s) pending a retry: {error}",
        retry_after=max(waits) if waits else None,
        update={"summary": event.summary.model_copy(update={"posts_done": done})},
    )


async def _send_round(
    bus: Bus,
    event: ActivityScanned,
    *,
    step: Step,
    error: str,
    retry_after: float | None,
    update: dict[str, object],
) -> None:
    """A non-final `step.failed`, and the event's next attempt through the delay ladder."""
    delay = compute_backoff(
        event.attempt, base=event.retry_policy.retry_delay, retry_after=retry_after
    )
    now = datetime.now(UTC)
    not_before = now + timedelta(seconds=delay)
    await bus.publish(
        StepFailed(
            event_id=derived_event_id(event.event_id, f"{step}.failed"),
            **event.envelope(),
            step=step,
            retriable=True,
            final=False,
            error=error,
            next_attempt_at=not_before,
        )
    )
    retry = event.model_copy(
        update={
            "event_id": derived_event_id(event.event_id, "retry"),
            "attempt": event.attempt + 1,
            "occurred_at": now,
            "deadline": not_before + timedelta(seconds=event.timeout_seconds),
            **update,
        }
    )
    await bus.publish_delayed(retry, topology.GENERATOR_QUEUE, not_before)
