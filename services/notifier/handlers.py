"""The notifier's subscriber: `execution.finished`, `schedule.moved` and `post.unpublished`
in, alerts out; recipients asked first."""

from __future__ import annotations

import structlog

from services.notifier.alerts import (
    POST_FAILED,
    SCHEDULE_MOVED,
    alert_kind,
    describe,
    describe_move,
    moved_wanted,
    unpublished_wanted,
    wanted,
)
from services.notifier.channels import Channels, Result
from shared import metrics
from shared.bus import Bus, Handler
from shared.events import (
    Event,
    ExecutionFinished,
    NotificationCreated,
    NotificationDelivery,
    PostUnpublished,
    RecipientConfirmationRequested,
    ScheduleMoved,
)
from shared.ids import derived_event_id

log = structlog.get_logger(__name__)


def make_handler(bus: Bus, channels: Channels) -> Handler:
    async def on_event(event: Event) -> None:
        if isinstance(event, RecipientConfirmationRequested):
            await on_question(event)
        elif isinstance(event, ScheduleMoved):
            await on_schedule_moved(event)
        elif isinstance(event, PostUnpublished):
            await on_unpublished(event)
        else:
            assert isinstance(event, ExecutionFinished)
            await on_execution_finished(event)

    async def on_question(event: RecipientConfirmationRequested) -> None:
        result = await channels.ask(event)
        metrics.NOTIFICATIONS_DELIVERED.labels(channel=result.channel, outcome=result.outcome).inc()
        log.info(
            "recipient asked to confirm",
            outcome=result.outcome,
            attempts=result.attempts,
            error=result.error,
        )

    async def on_execution_finished(event: ExecutionFinished) -> None:
        kind = alert_kind(event)
        if kind is None or not wanted(event, kind):
            log.info("no alert wanted", status=event.status, kind=kind)
            return
        title, body = describe(event, kind)
        # 1. In-app first: always on, and no other channel's trouble may hold it back.
        await bus.publish(
            NotificationCreated(
                event_id=derived_event_id(event.event_id, "notification.in_app"),
                **event.envelope(),
                user_id=event.user_id,
                kind=kind,
                title=title,
                body=body,
                link=event.link,
            )
        )
        # 2. Every other channel at once; transports' errors become records, never raise.
        results = await channels.deliver(event, kind)
        # 3. One record per delivery, ids derived so a redelivery's records are dropped.
        await record(event, kind, results)

    async def on_schedule_moved(event: ScheduleMoved) -> None:
        title, body = describe_move(event)
        # In-app always: herald moved the run, not the owner, who should hear of it.
        await bus.publish(
            NotificationCreated(
                event_id=derived_event_id(event.event_id, "notification.in_app"),
                **event.envelope(),
                user_id=event.user_id,
                kind=SCHEDULE_MOVED,
                title=title,
                body=body,
                link=event.link,
            )
        )
        if not moved_wanted(event):
            log.info("no email wanted", kind=SCHEDULE_MOVED)
            return
        await record(event, SCHEDULE_MOVED, await channels.tell(event, SCHEDULE_MOVED))

    async def on_unpublished(event: PostUnpublished) -> None:
        # The api stored the in-app alert when it recorded the failure: email only here.
        if not unpublished_wanted(event):
            log.info("no email wanted", kind=POST_FAILED)
            return
        await record(event, POST_FAILED, await channels.tell(event, POST_FAILED))

    async def record(
        event: ExecutionFinished | ScheduleMoved | PostUnpublished, kind: str, results: list[Result]
    ) -> None:
        for result in results:
            metrics.NOTIFICATIONS_DELIVERED.labels(
                channel=result.channel, outcome=result.outcome
            ).inc()
            log.info(
                "notification delivery",
                channel=result.channel,
                outcome=result.outcome,
                attempts=result.attempts,
                error=result.error,
            )
            await bus.publish(
                NotificationDelivery(
                    event_id=derived_event_id(
                        event.event_id,
                        f"notification.delivery:{result.channel}:{result.recipient.lower()}",
                    ),
                    **event.envelope(),
                    user_id=event.user_id,
                    channel=result.channel,
                    recipient=result.recipient,
                    outcome=result.outcome,
                    attempts=result.attempts,
                    error=result.error,
                    kind=kind,
                )
            )

    return on_event
