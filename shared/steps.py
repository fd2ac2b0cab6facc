"""Run one pipeline step of an execution: announce it, do it, and retry or fail it.

The worker decides retries from the policy carried in the event (DESIGN: ownership); a retry
is a copy of the incoming event with the next attempt number, sent through the delay ladder
to this worker's own queue, so only the failed step runs again.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog

from shared import topology
from shared.bus import Bus, PoisonHandler
from shared.cancellation import CancelledSet, ExecutionCancelledError
from shared.errors import BudgetExhaustedError, PermanentError, TransientError
from shared.events import (
    ActivityScanned,
    Event,
    JobDue,
    Step,
    StepFailed,
    StepStarted,
    StepWaiting,
)
from shared.ids import derived_event_id
from shared.retry import compute_backoff

log = structlog.get_logger(__name__)

StepInput = JobDue | ActivityScanned


async def run_step(
    bus: Bus,
    event: StepInput,
    *,
    step: Step,
    queue: topology.WorkQueue,
    cancelled: CancelledSet,
    work: Callable[[], Awaitable[Event | None]],
) -> None:
    """Run `work` for `event` and publish what came of it (the result or a step failure)."""
    if event.execution_id in cancelled:
        log.info("step skipped: execution cancelled", step=step)
        return
    if event.deadline <= datetime.now(UTC):
        # The API's sweeper turns the execution into TIMEOUT; nothing more is done for it.
        log.info("step skipped: past its deadline", step=step, deadline=event.deadline)
        return
    await bus.publish(
        StepStarted(
            event_id=derived_event_id(event.event_id, f"{step}.started"),
            **event.envelope(),
            step=step,
        )
    )
    try:
        result = await work()
    except ExecutionCancelledError:
        log.info("step stopped: execution cancelled", step=step)
        return
    except PermanentError as exc:
        await _fail(bus, event, step, exc, retriable=False, final=True)
        return
    except BudgetExhaustedError as exc:
        await _wait_for_budget(bus, event, step, queue, exc)
        return
    except Exception as exc:
        # Transient errors and unexpected ones alike get the job's retries, stack recorded.
        await _retry_or_fail(bus, event, step, queue, exc)
        return
    if result is not None:
        await bus.publish(result)


async def _wait_for_budget(
    bus: Bus,
    event: StepInput,
    step: Step,
    queue: topology.WorkQueue,
    exc: BudgetExhaustedError,
) -> None:
    """Send the step round the delay ladder until the budget is back: the same attempt."""
    until = datetime.now(UTC) + timedelta(seconds=exc.retry_after)
    purpose = f"{step}.waiting:{event.attempt}:{until.timestamp():.0f}"
    await bus.publish(
        StepWaiting(
            event_id=derived_event_id(event.event_id, purpose),
            **event.envelope(),
            step=step,
            reason=exc.message,
            until=until,
        )
    )
    later = event.model_copy(
        update={
            "event_id": derived_event_id(event.event_id, f"{purpose}:again"),
            "occurred_at": datetime.now(UTC),
            "deadline": until + timedelta(seconds=event.timeout_seconds),
        }
    )
    await bus.publish_delayed(later, queue, until)
    log.info("step waits for a budget", step=step, until=until, reason=exc.message)


def wait_reporter(bus: Bus, event: Event, step: Step) -> Callable[[float, str], Awaitable[None]]:
    """A callback that tells the api a step waits in place, past a second, for a budget."""
    reported: list[datetime] = []

    async def report(seconds: float, reason: str) -> None:
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        # One report per wait that goes further than the last by more than a few seconds.
        if reported and until <= reported[-1] + timedelta(seconds=5):
            return
        reported.append(until)
        await bus.publish(
            StepWaiting(
                event_id=derived_event_id(
                    event.event_id, f"{step}.waiting:{event.attempt}:{len(reported)}"
                ),
                **event.envelope(),
                step=step,
                reason=reason,
                until=until,
            )
        )

    return report


async def _retry_or_fail(
    bus: Bus,
    event: StepInput,
    step: Step,
    queue: topology.WorkQueue,
    exc: Exception,
) -> None:
    policy = event.retry_policy
    if event.attempt > policy.max_retries:
        await _fail(bus, event, step, exc, retriable=True, final=True)
        return
    retry_after = exc.retry_after if isinstance(exc, TransientError) else None
    delay = compute_backoff(event.attempt, base=policy.retry_delay, retry_after=retry_after)
    not_before = datetime.now(UTC) + timedelta(seconds=delay)
    await _fail(bus, event, step, exc, retriable=True, final=False, next_attempt_at=not_before)
    retry = event.model_copy(
        update={
            "event_id": derived_event_id(event.event_id, "retry"),
            "attempt": event.attempt + 1,
            "occurred_at": datetime.now(UTC),
            # Time spent waiting to retry does not count against the attempt's timeout.
            "deadline": not_before + timedelta(seconds=event.timeout_seconds),
        }
    )
    await bus.publish_delayed(retry, queue, not_before)
    log.info("step retry scheduled", step=step, attempt=retry.attempt, not_before=not_before)


async def _fail(
    bus: Bus,
    event: StepInput,
    step: Step,
    exc: Exception,
    *,
    retriable: bool,
    final: bool,
    next_attempt_at: datetime | None = None,
) -> None:
    message = str(exc) or exc.__class__.__name__
    log.warning("step failed", step=step, error=message, retriable=retriable, final=final)
    await bus.publish(
        StepFailed(
            event_id=derived_event_id(event.event_id, f"{step}.failed"),
            **event.envelope(),
            step=step,
            retriable=retriable,
            final=final,
            error=message,
            stack="".join(traceback.format_exception(exc)),
            next_attempt_at=next_attempt_at,
        )
    )


def poison_reporter(bus: Bus, step: Step) -> PoisonHandler:
    """Report a step input about to be dead-lettered as a final failure of its execution.

    The message stays in the dead-letter queue for inspection and replay; the execution ends
    FAILED with the reason instead of waiting for the timeout sweeper.
    """

    async def report(event: Event, reason: str) -> None:
        await bus.publish(
            StepFailed(
                event_id=derived_event_id(event.event_id, f"{step}.dead-lettered"),
                **event.envelope(),
                step=step,
                retriable=False,
                final=True,
                error=reason,
            )
        )

    return report
