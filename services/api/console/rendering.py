"""Templates, the signed-in user's API client, and the parts every page shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from services.api.console import credentials, wording
from services.api.console.client import ApiClient, ApiError
from services.api.console.forms import Form
from shared.notification_settings import EVENT_KINDS
from shared.platforms import PLATFORMS

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["in_zone"] = wording.in_zone
templates.env.filters["duration"] = wording.duration
templates.env.filters["job_clock"] = wording.job_clock
templates.env.filters["viewer_clock"] = wording.viewer_clock
templates.env.globals["describe_schedule"] = wording.describe_schedule
templates.env.globals["describe_dst"] = wording.describe_dst
templates.env.globals["job_types"] = wording.JOB_TYPES
templates.env.filters["job_type"] = wording.job_type_name
templates.env.filters["actor_name"] = wording.actor_name
templates.env.globals["weekday_options"] = [(str(n), day) for n, day in enumerate(wording.WEEKDAYS)]
templates.env.globals["zones"] = sorted(available_timezones())
templates.env.globals["notices"] = {
    "project-created": "Project created.",
    "credential-saved": "GitHub credential saved.",
    "job-created": "Job created.",
    "job-saved": "Job saved.",
    "job-enabled": "Job enabled.",
    "job-disabled": "Job disabled.",
    "job-deleted": "Job deleted.",
    "triggered": "Run started.",
    "already-running": "A run of this job is still open; its overlap policy allows one at a time.",
    "read": "Alert marked read.",
    "all-read": "All alerts marked read.",
    "post-saved": "Post saved.",
    "post-approve": "Post approved.",
    "post-scheduled": "Post scheduled.",
    "post-unschedule": "Post taken off the schedule; it stays approved.",
    "post-discard": "Post discarded.",
    "post-restore": "Post restored as a draft.",
    "publishing-saved": "Saved. Posts for it can be scheduled now.",
    "publishing-removed": "Removed. Posts for it can no longer be scheduled.",
}
templates.env.globals["platforms"] = PLATFORMS
templates.env.globals["alert_kinds"] = EVENT_KINDS
# How a project's `githubCredential` reads on the page.
templates.env.globals["credential_names"] = {
    "app": "herald's GitHub App",
    "token": "the project's own token",
    "global": "the server's token",
    "none": "no token",
}

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "SKIPPED", "MISSED"}


@asynccontextmanager
async def api_for(request: Request) -> AsyncIterator[ApiClient]:
    """Open the REST API as the signed-in user; without a credential, raise the API's 401."""
    secret = credentials.session_of(request)
    if secret is None:
        raise ApiError(401, "sign in first", [])
    async with ApiClient(request.app, secret) as api:
        yield api


async def render(
    request: Request,
    api: ApiClient,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a signed-in page: the user's zone, the bell's count and the form token included."""
    me = (await api.get("/api/me"))["data"]
    unread = (await api.get("/api/notifications/unread-count"))["data"]["unreadCount"]
    secret = credentials.session_of(request) or ""
    return templates.TemplateResponse(
        request,
        template,
        {
            "me": me,
            "zone": me.get("timezone") or "UTC",
            "unread": unread,
            "csrf": credentials.csrf_token(secret),
            "notice": request.query_params.get("notice"),
            **context,
        },
        status_code=status_code,
    )


async def posted_form(request: Request) -> Form | None:
    """Read a posted form; None unless its token is this user's and it came from this site."""
    form = await Form.read(request)
    return form if credentials.valid_form(request, form.get("csrf")) else None


LANDING = "/console/jobs"


def console_page(value: str | None) -> str:
    """A posted or linked return address, if it is a console page of this site; else the landing.

    Sign-in is never a return address (it would loop); CR, LF and backslashes are refused,
    as browsers read `/\\host` as another site.
    """
    if (
        not value
        or not value.startswith("/console/")
        or value.startswith("/console/signin")
        or any(c in value for c in "\\\r\n")
    ):
        return LANDING
    return value


def see_other(url: str, *, notice: str | None = None) -> RedirectResponse:
    """Answer a form post with a redirect, so reloading the page never posts it again."""
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + notice
    return RedirectResponse(url, status_code=303)


def plain(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """Render a page that needs no signed-in user (sign-in, errors)."""
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def refused_form(request: Request) -> Response:
    """Answer a post without a valid form token or from another site; nothing changes."""
    return plain(request, "error.html", 403, title="Form refused", detail=REFUSED)


REFUSED = (
    "The form was refused because it did not come from this console. Reload the page and try again."
)
