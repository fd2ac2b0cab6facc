"""In-app alerts and delivery records, stored in the transaction that claims their events.

Alerts of one job and kind that nobody has read collapse into one, as an error tracker
groups events: a `*/2` job on a quiet repository raises one "completed" alert whose count
grows, not one every two minutes. Its wording, link and run are the latest's. Once read, the
next alert starts a new one. Each event is counted once: its id was claimed in the inbox in
this same transaction, so a redelivery never reaches here.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.schema import Delivery, Notification
from shared.events import Event, NotificationCreated, NotificationDelivery
from shared.ids import new_id

KEEP_NOTIFICATIONS = 50

_NOTIFICATIONS = cast(Table, Notification.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)


async def store_alerts(connection: AsyncConnection, dialect: Any, events: list[Event]) -> None:
    """Store in-app alerts (the newest 50 per user are kept) and delivery records."""
    alerts = [event for event in events if isinstance(event, NotificationCreated)]
    deliveries = [event for event in events if isinstance(event, NotificationDelivery)]
    if alerts:
        await connection.execute(_upsert_alerts(dialect), _collapsed(alerts))
        ranked = (
            select(
                _NOTIFICATIONS.c.id,
                func.row_number()
                .over(
                    partition_by=_NOTIFICATIONS.c.user_id,
                    order_by=(_NOTIFICATIONS.c.created_at.desc(), _NOTIFICATIONS.c.id.desc()),
                )
                .label("rank"),
            )
            .where(_NOTIFICATIONS.c.user_id.in_(sorted({event.user_id for event in alerts})))
            .subquery()
        )
        await connection.execute(
            delete(_NOTIFICATIONS).where(
                _NOTIFICATIONS.c.id.in_(
                    select(ranked.c.id).where(ranked.c.rank > KEEP_NOTIFICATIONS)
                )
            )
        )
    if deliveries:
        await connection.execute(
            _DELIVERIES.insert(),
            [
                {
                    "id": new_id("dlv"),
                    "user_id": event.user_id,
                    "execution_id": event.execution_id or None,
                    "notification_id": None,
                    "kind": event.kind,
                    "channel": event.channel,
                    "recipient": event.recipient,
                    "outcome": event.outcome,
                    "attempts": event.attempts,
                    "error": event.error,
                    "created_at": event.occurred_at,
                }
                for event in deliveries
            ],
        )


def _collapsed(alerts: list[NotificationCreated]) -> list[dict[str, Any]]:
    """Turn the batch's alerts into rows, those of one user, job and kind into one.

    One statement cannot insert and then update the same row, so the batch's repeats are
    counted here; the upsert adds them to an unread row already stored.
    """
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for event in sorted(alerts, key=lambda event: event.occurred_at):
        key = (event.user_id, event.job_id, event.kind) if event.job_id else (event.event_id,)
        earlier = rows.get(key)
        rows[key] = {
            "id": new_id("ntf"),
            "user_id": event.user_id,
            # A moved schedule concerns no execution: its events carry none.
            "execution_id": event.execution_id or None,
            "job_id": event.job_id or None,
            "kind": event.kind,
            "title": event.title,
            "body": event.body,
            "link": event.link,
            "read_at": None,
            "count": 1 + (earlier["count"] if earlier else 0),
            "first_at": earlier["first_at"] if earlier else event.occurred_at,
            "created_at": event.occurred_at,
        }
    return list(rows.values())


def _upsert_alerts(dialect: Any) -> Any:
    """Insert alerts; one arriving for a job and kind with an unread alert updates that one.

    The partial unique index (user, job, kind) over unread rows decides: a read alert is
    never reused, and two transactions storing alerts of one job at once cannot both insert
    (the second waits for the first, then updates its row). The latest run's wording, link
    and time win, whichever order the alerts arrive in; the time moves the alert up the list.
    """
    insert = dialect.insert(_NOTIFICATIONS)
    new, old = insert.excluded, _NOTIFICATIONS.c
    newer = new.created_at >= old.created_at

    def latest(name: str) -> Any:
        return case((newer, new[name]), else_=old[name])

    return insert.on_conflict_do_update(
        index_elements=[old.user_id, old.job_id, old.kind],
        index_where=and_(old.read_at.is_(None), old.job_id.is_not(None)),
        set_={
            "count": old.count + new.count,
            **{
                name: latest(name)
                for name in ("execution_id", "title", "body", "link", "created_at")
            },
            "first_at": case((new.first_at < old.first_at, new.first_at), else_=old.first_at),
        },
    )
