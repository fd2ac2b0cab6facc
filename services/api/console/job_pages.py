"""Projects and jobs: the list, create and edit with a live preview, toggle, delete, trigger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.api.console import forms
from services.api.console.client import ApiClient, ApiError
from services.api.console.forms import Form
from services.api.console.rendering import (
    api_for,
    console_page,
    posted_form,
    refused_form,
    render,
    see_other,
    templates,
)
from shared.notification_settings import DEFAULT_EVENTS

router = APIRouter()

LIST_LIMIT = 200


async def _projects(api: ApiClient) -> list[dict[str, Any]]:
    return list((await api.get("/api/projects", limit=LIST_LIMIT))["data"])


@router.get("/jobs")
async def jobs_page(request: Request) -> Response:
    async with api_for(request) as api:
        projects = await _projects(api)
        jobs = (await api.get("/api/cron/schedules", limit=LIST_LIMIT))["data"]
        by_project: dict[str, list[dict[str, Any]]] = {project["id"]: [] for project in projects}
        for job in jobs:
            by_project.setdefault(job["projectId"], []).append(job)
        return await render(
            request, api, "jobs.html", projects=projects, jobs_by_project=by_project
        )


@router.get("/projects/new")
async def new_project_page(request: Request) -> Response:
    async with api_for(request) as api:
        values = {
            "platforms": ["x", "linkedin", "blog"],
            "notificationEvents": list(DEFAULT_EVENTS),
        }
        return await render(request, api, "project_form.html", values=values, errors={})


@router.post("/projects/new")
async def create_project(request: Request) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        try:
            await api.post("/api/projects", forms.project_body(form))
        except ApiError as exc:
            if exc.status != 422:
                raise
            values: dict[str, Any] = {
                **form.values(),
                "platforms": form.all("platforms"),
                "notificationEvents": form.all("notificationEvents"),
            }
            return await render(
                request, api, "project_form.html", 422, values=values, errors=exc.field_errors()
            )
        return see_other("/console/jobs", notice="project-created")


async def _job_form(
    request: Request,
    api: ApiClient,
    *,
    job: dict[str, Any] | None,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    preview = await _preview(api, values)
    projects = await _projects(api)
    upstream_choices = await _upstream_choices(api, job=job, values=values, projects=projects)
    errors = _named(errors, job=job, choices=upstream_choices)
    return await render(
        request,
        api,
        "job_form.html",
        status_code,
        job=job,
        project_options=[(project["id"], project["name"]) for project in projects],
        values=values,
        errors=errors,
        preview=preview,
        dst_applies=forms.dst_applies(values),
        upstream_choices=upstream_choices,
        dependency_choices=forms.DEPENDENCY_CHOICES,
    )


def _named(
    errors: dict[str, str], *, job: dict[str, Any] | None, choices: list[dict[str, str]]
) -> dict[str, str]:
    """Say a cycle's path with job names where the API said ids."""
    message = errors.get(forms.DEPENDS_ON)
    if message is None:
        return errors
    names = {choice["id"]: f"“{choice['label']}”" for choice in choices}
    if job is not None:
        names[job["id"]] = f"“{job['name']}”"
    for job_id, name in names.items():
        message = message.replace(job_id, name)
    return {**errors, forms.DEPENDS_ON: message}


async def _upstream_choices(
    api: ApiClient,
    *,
    job: dict[str, Any] | None,
    values: dict[str, str],
    projects: list[dict[str, Any]],
) -> list[dict[str, str]]:
    """The jobs this one may run after: the user's others, and any it names that are gone.

    A deleted upstream stays listed while the job names it, so the form shows it (and the
    API's refusal to keep it lands beside it) rather than dropping it unasked.
    """
    project_names = {project["id"]: project["name"] for project in projects}
    jobs = (await api.get("/api/cron/schedules", limit=LIST_LIMIT))["data"]
    own = job["id"] if job else None
    choices = [
        {
            "id": other["id"],
            "label": other["name"],
            "hint": f"Project {project_names.get(other['projectId'], 'not listed')}"
            + ("" if other["isEnabled"] else "; disabled: starts this job only when run by hand"),
        }
        for other in jobs
        if other["id"] != own
    ]
    listed = {choice["id"] for choice in choices}
    prefix = forms.DEPENDS_ON + "."
    for name in values:
        gone = name.removeprefix(prefix)
        if name.startswith(prefix) and gone not in listed and gone != own:
            choices.append(
                {
                    "id": gone,
                    "label": f"Deleted job {gone}",
                    "hint": "Deleted: this dependency never fires. Choose “No” to remove it.",
                }
            )
    return choices


async def _refused_job_form(
    request: Request,
    api: ApiClient,
    *,
    job: dict[str, Any] | None,
    form: Form,
    refusal: ApiError,
) -> Response:
    """The job form again, as posted, with the API's message beside each refused field."""
    if refusal.status != 422:
        raise refusal
    # The webhook URL is write-only (it may embed a token): it is not written back.
    values = {name: value for name, value in form.values().items() if name != "webhookUrl"}
    errors = forms.dependency_errors(refusal.field_errors(), form)
    return await _job_form(request, api, job=job, values=values, errors=errors, status_code=422)


async def _preview(api: ApiClient, values: dict[str, str]) -> dict[str, Any]:
    """Fetch the next runs of the schedule in `values`, or the API's reasons it has none."""
    body = forms.preview_body(Form({name: [value] for name, value in values.items()}))
    try:
        return {"data": (await api.post("/api/cron/schedule/preview", body))["data"]}
    except ApiError as exc:
        if exc.status != 422:
            raise
        return {"errors": exc.field_errors()}


@router.get("/jobs/new")
async def new_job_page(request: Request) -> Response:
    values = {**forms.NEW_JOB_VALUES, "projectId": request.query_params.get("projectId", "")}
    async with api_for(request) as api:
        values["timeConfig.timezone"] = (await api.get("/api/me"))["data"]["timezone"] or "UTC"
        return await _job_form(request, api, job=None, values=values, errors={})


@router.post("/jobs/new")
async def create_job(request: Request) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        try:
            created = await api.post("/api/cron/schedule", forms.job_body(form))
        except ApiError as exc:
            return await _refused_job_form(request, api, job=None, form=form, refusal=exc)
        job = created["data"]
        if "webhookSecret" in job:
            # Shown on this page only, never in a URL: herald cannot show it again.
            return await render(
                request, api, "webhook_secret.html", job=job, secret=job["webhookSecret"], made=True
            )
        return see_other(f"/console/jobs/{job['id']}", notice="job-created")


@router.post("/jobs/{job_id}/webhook-secret")
async def renew_webhook_secret(request: Request, job_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        job = (await api.get(f"/api/cron/schedules/{job_id}"))["data"]
        renewed = await api.post(f"/api/cron/schedules/{job_id}/webhook-secret", {})
        return await render(
            request,
            api,
            "webhook_secret.html",
            job=job,
            secret=renewed["data"]["secret"],
            made=False,
        )


@router.get("/jobs/{job_id}/edit")
async def edit_job_page(request: Request, job_id: str) -> Response:
    async with api_for(request) as api:
        job = (await api.get(f"/api/cron/schedules/{job_id}"))["data"]
        return await _job_form(request, api, job=job, values=forms.job_values(job), errors={})


@router.post("/jobs/{job_id}/edit")
async def update_job(request: Request, job_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        job = (await api.get(f"/api/cron/schedules/{job_id}"))["data"]
        try:
            await api.patch("/api/cron/schedule", forms.job_body(form, job_id=job["id"]))
        except ApiError as exc:
            return await _refused_job_form(request, api, job=job, form=form, refusal=exc)
        return see_other(f"/console/jobs/{job['id']}", notice="job-saved")


@router.post("/preview")
async def preview_fragment(request: Request) -> Response:
    """Render the live preview for the schedule currently typed into a job form."""
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        me = (await api.get("/api/me"))["data"]
        preview = await _preview(api, form.values())
    return templates.TemplateResponse(
        request,
        "_preview.html",
        {
            "preview": preview,
            "zone": me.get("timezone") or "UTC",
            "dst_applies": forms.dst_applies(form.values()),
        },
    )


@router.post("/jobs/{job_id}/toggle")
async def toggle_job(request: Request, job_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    enable = form.get("enable") == "true"
    async with api_for(request) as api:
        await api.patch(f"/api/cron/schedules/{job_id}", {"isEnabled": enable})
    notice = "job-enabled" if enable else "job-disabled"
    return see_other(console_page(form.get("back")), notice=notice)


@router.get("/jobs/{job_id}/delete")
async def delete_job_page(request: Request, job_id: str) -> Response:
    async with api_for(request) as api:
        job = (await api.get(f"/api/cron/schedules/{job_id}"))["data"]
        return await render(request, api, "job_delete.html", job=job)


@router.post("/jobs/{job_id}/delete")
async def delete_job(request: Request, job_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        await api.delete(f"/api/cron/schedules/{job_id}")
    return see_other("/console/jobs", notice="job-deleted")


@router.post("/jobs/{job_id}/trigger")
async def trigger_job(request: Request, job_id: str) -> Response:
    form = await posted_form(request)
    if form is None:
        return refused_form(request)
    async with api_for(request) as api:
        try:
            started = await api.post("/api/cron/trigger", {"jobId": job_id})
        except ApiError as exc:
            if exc.status != 409:
                raise
            return see_other(f"/console/jobs/{job_id}", notice="already-running")
    return see_other(f"/console/executions/{started['data']['id']}", notice="triggered")
