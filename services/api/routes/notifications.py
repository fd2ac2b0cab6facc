"""In-app alerts: the last 50, the unread badge, read marks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import func, select, update

from services.api.auth import UserDep
from services.api.deps import SessionDep
from services.api.problems import not_found
from services.api.views import notification_view
from shared.db.schema import Notification

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


async def _unread(session: Any, user_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(count or 0)


@router.get("", operation_id="listNotifications")
async def list_notifications(user: UserDep, session: SessionDep) -> dict[str, Any]:
    rows = (
        await session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(50)
        )
    ).all()
    return {
        "success": True,
        "data": [notification_view(row) for row in rows],
        "count": len(rows),
        "unreadCount": await _unread(session, user.id),
    }


@router.get("/unread-count", operation_id="countUnreadNotifications")
async def unread_count(user: UserDep, session: SessionDep) -> dict[str, Any]:
    return {"success": True, "data": {"unreadCount": await _unread(session, user.id)}}


@router.post("/{notification_id}/read", operation_id="markNotificationRead")
async def mark_read(
    notification_id: Annotated[str, Path(max_length=40)], user: UserDep, session: SessionDep
) -> dict[str, Any]:
    row = await session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user.id
        )
    )
    if row is None:
        raise not_found("notification")
    if row.read_at is None:
        row.read_at = datetime.now(UTC)
    await session.commit()
    return {"success": True, "data": notification_view(row)}


@router.post("/read-all", operation_id="markAllNotificationsRead")
async def mark_all_read(user: UserDep, session: SessionDep) -> dict[str, Any]:
    await session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    await session.commit()
    return {"success": True, "data": {"unreadCount": 0}}
