"""The notifier's subscriber: `execution.finished` in, alerts out."""

from __future__ import annotations

import structlog

from services.notifier.alerts import alert_kind, describe, wanted
from shared.bus import Bus, Handler
from shared.events import Event, ExecutionFinished, NotificationCreated
from shared.ids import derived_event_id

log = structlog.get_logger(__name__)


def make_handler(bus: Bus) -> Handler:
    async def on_execution_finished(event: Event) -> None:
        assert isinstance(event, ExecutionFinished)
        kind = alert_kind(event)
        if kind is None or not wanted(event, kind):
            log.info("no alert wanted", status=event.status, kind=kind)
            return
        title, body = describe(event, kind)
        # In-app alerts are always on; other channels follow in their own modules.
        await bus.publish(
            NotificationCreated(
                event_id=derived_event_id(event.event_id, "notification.in_app"),
                execution_id=event.execution_id,
                job_id=event.job_id,
                project_id=event.project_id,
                attempt=event.attempt,
                user_id=event.user_id,
                kind=kind,
                title=title,
                body=body,
                link=event.link,
            )
        )

    return on_execution_finished
