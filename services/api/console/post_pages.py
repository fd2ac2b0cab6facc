"""Reviewing posts in the console: the drafts across projects, and one post to edit, approve,
schedule in the viewer's own zone, discard or restore, with its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.api.console import wording
from services.api.console.client import ApiClient, ApiError
from services.api.console.rendering import api_for, posted_form, refused_form, render, see_other
from shared.platforms import PLATFORMS
from shared.post_length import length_of
from shared.publishing import network_for

router = APIRouter()

STATES = ("DRAFT", "APPROVED", "SCHEDULED", "PUBLISHED", "FAILED", "DISCARDED")
ACTIONS = ("approve", "unschedule", "discard", "restore")


@router.get("/posts")
async def posts_page(request: Request) -> Response:
    state = request.query_params.get("state", "DRAFT")
    params: dict[str, str | int | bool] = {"limit": 50}
    if state in STATES:
        params["publishStatus"] = state
    if cursor := request.query_params.get("cursor"):
        params["cursor"] = cursor
    async with api_for(request) as api:
        page = await api.get("/api/posts", **params)
        projects = {
            project["id"]: project["name"]
            for project in (await api.get("/api/projects", limit=200))["data"]
        }
        return await render(
            request,
            api,
            "posts.html",
            posts=page["data"],
            next_cursor=page.get("nextCursor"),
            state=state if state in STATES else "",
            states=STATES,
            projects=projects,
        )


@router.get("/posts/{post_id}")
async def post_page(request: Request, post_id: str) -> Response:
    async with api_for(request) as api:
        return await _post_form(request, api, post_id)


@router.post("/posts/{post_id}")
async def save_post(request: Request, post_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    body: dict[str, Any] = {"body": form.get("body")}
    if form.get("title"):
        body["title"] = form.get("title")
    async with api_for(request) as api:
        try:
            await api.patch(f"/api/posts/{post_id}", body)
        except ApiError as refusal:
            return await _refused(request, api, post_id, form.values(), refusal)
    return see_other(f"/console/posts/{post_id}", notice="post-saved")


@router.post("/posts/{post_id}/schedule")
async def schedule_post(request: Request, post_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        zone = (await api.get("/api/me"))["data"].get("timezone") or "UTC"
        body: dict[str, Any] = {}
        if form.get("when") == "at":
            at = local_instant(form.get("publishAt"), zone)
            if at is None:
                refusal = ApiError(
                    422,
                    "publishAt: a date and time",
                    [{"field": "publishAt", "message": "choose a date and a time"}],
                )
                return await _refused(request, api, post_id, form.values(), refusal)
            body["publishAt"] = at.isoformat()
        try:
            await api.post(f"/api/posts/{post_id}/schedule", body)
        except ApiError as refusal:
            return await _refused(request, api, post_id, form.values(), refusal)
    return see_other(f"/console/posts/{post_id}", notice="post-scheduled")


@router.post("/posts/{post_id}/{action}")
async def act_on_post(request: Request, post_id: str, action: str) -> Response:
    if action not in ACTIONS:
        return refused_form(request)
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        try:
            await api.post(f"/api/posts/{post_id}/{action}")
        except ApiError as refusal:
            return await _refused(request, api, post_id, {}, refusal)
    return see_other(f"/console/posts/{post_id}", notice=f"post-{action}")


def local_instant(value: str, zone: str) -> datetime | None:
    """A `datetime-local` value read on the viewer's clock; None when it is not one.

    A wall time that falls in a daylight-saving gap or fold is read as the zone reads it
    first (`fold=0`); the page shows the instant it became, in the zone, before it goes out.
    """
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return None
    if naive.tzinfo is not None:
        return None
    return naive.replace(tzinfo=wording.zone_or_utc(zone))


async def _refused(
    request: Request,
    api: ApiClient,
    post_id: str,
    values: dict[str, str],
    refusal: ApiError,
) -> Response:
    """The post again, as posted, with the API's reason beside the field or above the form."""
    if refusal.status not in (409, 422):
        raise refusal
    errors = refusal.field_errors() if refusal.status == 422 else {}
    problem = refusal.detail if refusal.status == 409 else None
    # No field on the page names the platform: the project cannot publish it yet.
    if "platform" in errors:
        problem = errors.pop("platform")
    return await _post_form(
        request,
        api,
        post_id,
        values=values,
        errors=errors,
        problem=problem,
        status_code=refusal.status,
    )


async def _post_form(
    request: Request,
    api: ApiClient,
    post_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    post = (await api.get(f"/api/posts/{post_id}"))["data"]
    platform = PLATFORMS.get(post["platform"])
    body = (values or {}).get("body", post["body"] or "")
    limits = await _instance_limits(api, post)
    length = length_of(
        post["platform"],
        body,
        limit=limits.get("maxCharacters"),
        per_url=limits.get("charactersReservedPerUrl"),
    )
    return await render(
        request,
        api,
        "post.html",
        status_code=status_code,
        post=post,
        has_title=bool(platform and platform.has_title),
        values={"title": post["title"] or "", "body": post["body"] or "", **(values or {})},
        errors=errors or {},
        problem=problem,
        length=length,
    )


async def _instance_limits(api: ApiClient, post: dict[str, Any]) -> dict[str, int]:
    """The limits the API checks the post against (`services.api.publishing.post_limits`),
    as the project's publishing view shows them: a Mastodon instance's own, once known."""
    if network_for(post["platform"]) != "mastodon" or not post.get("projectId"):
        return {}
    try:
        project = (await api.get(f"/api/projects/{post['projectId']}"))["data"]
    except ApiError:
        return {}  # the usual limits; saving checks the instance's own
    mastodon = (project.get("publishing") or {}).get("mastodon") or {}
    return {
        name: mastodon[name]
        for name in ("maxCharacters", "charactersReservedPerUrl")
        if isinstance(mastodon.get(name), int)
    }
