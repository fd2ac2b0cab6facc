"""A project's page: where it reads GitHub and with what, its webhook, its recent deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.api.console.client import ApiClient, ApiError
from services.api.console.forms import Form, number
from services.api.console.rendering import api_for, posted_form, refused_form, render, see_other
from services.api.deps import app_state

router = APIRouter()

DELIVERIES_SHOWN = 20
CREDENTIALS = ("installation", "token", "global")


def webhook_url(request: Request, project_id: str) -> str:
    """Where GitHub sends the project's deliveries, as the API's own answer names it."""
    public = app_state(request).settings.public_url.rstrip("/")
    return f"{public}/api/webhooks/github?project={project_id}"


async def _project_page(
    request: Request,
    api: ApiClient,
    project_id: str,
    *,
    status_code: int = 200,
    secret: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    project = (await api.get(f"/api/projects/{project_id}"))["data"]
    deliveries = (
        await api.get(f"/api/projects/{project['id']}/github-deliveries", limit=DELIVERIES_SHOWN)
    )["data"]
    response = await render(
        request,
        api,
        "project.html",
        status_code,
        project=project,
        deliveries=deliveries,
        webhook_url=webhook_url(request, project["id"]),
        secret=secret,
        values=values or {"credential": _credential_choice(project)},
        errors=errors or {},
    )
    if secret is not None:
        # The secret is on this page once: no cache may keep it.
        response.headers["Cache-Control"] = "no-store"
    return response


def _credential_choice(project: dict[str, Any]) -> str:
    if project.get("githubInstallationId") is not None:
        return "installation"
    return "token" if project.get("githubTokenSet") else "global"


@router.get("/projects/{project_id}")
async def project_page(request: Request, project_id: str) -> Response:
    async with api_for(request) as api:
        return await _project_page(request, api, project_id)


@router.post("/projects/{project_id}/webhook-secret")
async def make_webhook_secret(request: Request, project_id: str) -> Response:
    """A new secret (replacing any): shown on the page this post answers, and never again."""
    if await posted_form(request) is None:
        return refused_form(request)
    async with api_for(request) as api:
        made = (await api.post(f"/api/projects/{project_id}/github-webhook-secret"))["data"]
        return await _project_page(request, api, project_id, secret=made["secret"])


@router.post("/projects/{project_id}/github-credential")
async def set_github_credential(request: Request, project_id: str) -> Response:
    """Read through an installation, with a token of the project's own, or the server's."""
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        project = (await api.get(f"/api/projects/{project_id}"))["data"]
        values = {
            "credential": form.get("credential"),
            "githubInstallationId": form.get("githubInstallationId"),
        }
        try:
            body = credential_body(form, token_set=bool(project.get("githubTokenSet")))
            await api.patch(f"/api/projects/{project['id']}", body)
        except ChoiceError as exc:
            return await _project_page(
                request, api, project_id, status_code=422, values=values, errors=exc.errors
            )
        except ApiError as exc:
            if exc.status != 422:
                raise
            # The form comes back without the token: it is never written into a page.
            return await _project_page(
                request,
                api,
                project_id,
                status_code=422,
                values=values,
                errors=exc.field_errors(),
            )
        return see_other(f"/console/projects/{project['id']}", notice="credential-saved")


class ChoiceError(Exception):
    """The form's choice is incomplete; nothing was sent to the API."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.errors = {field: message}


def credential_body(form: Form, *, token_set: bool) -> dict[str, Any]:
    """The `PATCH /api/projects/{id}` body of the one credential chosen: it replaces the other
    (a token beside an installation would never be read). An empty token keeps the stored
    one, if there is one."""
    chosen = form.get("credential")
    if chosen == "installation":
        text = form.get("githubInstallationId").strip()
        if not text:
            raise ChoiceError(
                "githubInstallationId", "required to read through herald's GitHub App"
            )
        return {"githubInstallationId": number(text), "githubToken": ""}
    if chosen == "token":
        token = form.get("githubToken").strip()
        if token:
            return {"githubInstallationId": None, "githubToken": token}
        if not token_set:
            raise ChoiceError("githubToken", "required: a token that can read the repository")
        return {"githubInstallationId": None}
    if chosen == "global":
        return {"githubInstallationId": None, "githubToken": ""}
    raise ChoiceError("credential", f"choose one of {', '.join(CREDENTIALS)}")
