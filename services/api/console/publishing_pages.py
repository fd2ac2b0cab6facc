"""A project's publishing: how it posts to Mastodon, Bluesky and its generic webhook.

The secrets are fields to type, never shown again; the webhook's signing secret, which
herald makes, is shown once on the page that answers its saving.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.api.console.client import ApiClient, ApiError
from services.api.console.rendering import (
    api_for,
    posted_form,
    refused_form,
    render,
    see_other,
)
from services.api.publishing import FIELDS

router = APIRouter()

SECRETS = frozenset({"accessToken", "appPassword"})


async def _page(
    request: Request,
    api: ApiClient,
    project_id: str,
    status_code: int = 200,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    failed: str = "",
    signing_secret: str = "",
) -> Response:
    project = (await api.get(f"/api/projects/{project_id}"))["data"]
    return await render(
        request,
        api,
        "publishing.html",
        status_code,
        project=project,
        publishing=project["publishing"],
        values=values or {},
        errors=errors or {},
        failed=failed,
        signing_secret=signing_secret,
    )


@router.get("/projects/{project_id}/publishing")
async def publishing_page(request: Request, project_id: str) -> Response:
    async with api_for(request) as api:
        return await _page(request, api, project_id)


@router.post("/projects/{project_id}/publishing/{network}")
async def save_publishing(request: Request, project_id: str, network: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    fields = FIELDS.get(network)
    if fields is None:
        return see_other(f"/console/projects/{project_id}/publishing")
    body: dict[str, Any] = {name: form.get(name) for name in fields if form.get(name)}
    async with api_for(request) as api:
        try:
            saved = (await api.put(f"/api/projects/{project_id}/publishing/{network}", body))[
                "data"
            ]
        except ApiError as exc:
            if exc.status != 422:
                raise
            values = {name: value for name, value in form.values().items() if name not in SECRETS}
            return await _page(
                request,
                api,
                project_id,
                422,
                values=values,
                errors=exc.field_errors(),
                failed=network,
            )
        if saved.get("signingSecret"):
            # Shown on this answer only: a redirect would have to carry it in a URL.
            return await _page(request, api, project_id, signing_secret=saved["signingSecret"])
    return see_other(f"/console/projects/{project_id}/publishing", notice="publishing-saved")


@router.post("/projects/{project_id}/publishing/{network}/delete")
async def delete_publishing(request: Request, project_id: str, network: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        if network in FIELDS:
            await api.delete(f"/api/projects/{project_id}/publishing/{network}")
    return see_other(f"/console/projects/{project_id}/publishing", notice="publishing-removed")
