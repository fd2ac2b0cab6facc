"""The signed-in user's profile: name and the time zone times are displayed in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.auth import UserDep
from services.api.deps import SessionDep
from services.api.problems import invalid
from services.api.requests import UpdateMe
from shared.db.schema import User
from shared.scheduling import ScheduleError, validate_timezone

router = APIRouter(prefix="/api/me", tags=["me"])


def me_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "timezone": user.timezone}


@router.get("", operation_id="getMe")
async def get_me(user: UserDep) -> dict[str, Any]:
    return {"success": True, "data": me_view(user)}


@router.patch("", operation_id="updateMe")
async def update_me(body: UpdateMe, user: UserDep, session: SessionDep) -> dict[str, Any]:
    if body.timezone is not None:
        try:
            validate_timezone(body.timezone)
        except ScheduleError as exc:
            raise invalid("timezone", exc.message) from None
        user.timezone = body.timezone
    if body.name is not None:
        user.name = body.name
    # The user was loaded by this request's session (dependencies are shared per request).
    await session.commit()
    return {"success": True, "data": me_view(user)}
