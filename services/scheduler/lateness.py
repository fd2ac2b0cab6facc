"""The scheduler's bus: publishes like any other, and measures each fire's lateness."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared import metrics
from shared.bus import AmqpBus
from shared.events import JobDue, Trigger


class LatenessBus(AmqpBus):
    """An AmqpBus that observes, per published scheduled `job.due`, how late it went out."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        await super().publish_raw(routing_key, body, message_id=message_id)
        if routing_key == JobDue.routing_key:
            observe_lateness(body, self._clock())


def observe_lateness(body: bytes, now: datetime) -> None:
    """Record how long after its scheduled instant a scheduled run was published."""
    payload = json.loads(body)
    if payload.get("trigger") != Trigger.SCHEDULE:
        return  # catch-up runs are late by design; manual ones have no slot
    scheduled = datetime.fromisoformat(payload["scheduledFor"])
    metrics.SCHEDULER_FIRE_LATENESS.observe(max(0.0, (now - scheduled).total_seconds()))
