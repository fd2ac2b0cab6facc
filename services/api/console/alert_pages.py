"""The notification bell: the last 50 alerts, marking them read, and the unread count."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.api.console.rendering import api_for, posted_form, refused_form, render, see_other

router = APIRouter()


@router.get("/notifications")
async def notifications_page(request: Request) -> Response:
    async with api_for(request) as api:
        alerts = await api.get("/api/notifications")
        return await render(request, api, "notifications.html", alerts=alerts["data"])


@router.post("/notifications/read-all")
async def mark_all_read(request: Request) -> Response:
    if await posted_form(request) is None:
        return refused_form(request)
    async with api_for(request) as api:
        await api.post("/api/notifications/read-all")
    return see_other("/console/notifications", notice="all-read")


@router.post("/notifications/{notification_id}/read")
async def mark_read(request: Request, notification_id: str) -> Response:
    if await posted_form(request) is None:
        return refused_form(request)
    async with api_for(request) as api:
        await api.post(f"/api/notifications/{notification_id}/read")
    return see_other("/console/notifications", notice="read")


@router.get("/unread")
async def unread_count(request: Request) -> Response:
    """Answer the bell's count, for every page to poll."""
    async with api_for(request) as api:
        count = (await api.get("/api/notifications/unread-count"))["data"]["unreadCount"]
    return JSONResponse({"unreadCount": count})
