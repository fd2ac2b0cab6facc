"""A job's statistics and history, and one execution: timeline, error, posts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.api.console import charts, graphs
from services.api.console.client import ApiError
from services.api.console.project_pages import webhook_url
from services.api.console.rendering import TERMINAL, api_for, render
from shared.platforms import PLATFORMS

router = APIRouter()

HISTORY_PAGE = 25
PREVIEW_COUNT = 5


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str) -> Response:
    cursor = request.query_params.get("cursor")
    async with api_for(request) as api:
        job = (await api.get(f"/api/cron/schedules/{job_id}"))["data"]
        params: dict[str, str | int | bool] = {
            "jobId": job["id"],
            "limit": HISTORY_PAGE,
            "stats": True,
        }
        if cursor:
            params["cursor"] = cursor
        history = await api.get("/api/cron/executions", **params)
        project = (await api.get(f"/api/projects/{job['projectId']}"))["data"]
        upcoming = (await api.get(f"/api/cron/schedules/{job['id']}/preview", count=PREVIEW_COUNT))[
            "data"
        ]
        graph = (await api.get(f"/api/cron/schedules/{job['id']}/graph"))["data"]
        statistics = history["statistics"]
        bars = charts.duration_bars(statistics["recentExecutions"])
        return await render(
            request,
            api,
            "job.html",
            job=job,
            project=project,
            webhook_url=webhook_url(request, project["id"]),
            executions=history["data"],
            next_cursor=history.get("nextCursor"),
            statistics=statistics,
            upcoming=upcoming,
            bars=bars,
            chart_summary=charts.summary(bars),
            chart={"width": charts.WIDTH, "height": charts.HEIGHT},
            drawing=graphs.draw(graph),
            neighbours=graphs.neighbours(graph),
            node={"width": graphs.NODE_WIDTH, "height": graphs.NODE_HEIGHT},
        )


@router.get("/executions/{execution_id}")
async def execution_page(request: Request, execution_id: str) -> Response:
    async with api_for(request) as api:
        execution = (await api.get(f"/api/cron/executions/{execution_id}"))["data"]
        try:
            job: dict[str, Any] | None = (
                await api.get(f"/api/cron/schedules/{execution['jobId']}")
            )["data"]
        except ApiError as exc:
            # A deleted job keeps its history: the run is still worth reading.
            if exc.status != 404:
                raise
            job = None
        posts = [{**post, "limit": _limit(post.get("platform"))} for post in execution["content"]]
        digest = execution["metadata"].get("digest")
        rects, digest_summary = charts.digest_rects(digest)
        return await render(
            request,
            api,
            "execution.html",
            execution=execution,
            job=job,
            posts=posts,
            running=execution["status"] not in TERMINAL,
            digest=digest,
            digest_rects=rects,
            digest_summary=digest_summary,
            digest_axis=charts.digest_axis(digest),
            digest_chart={"width": charts.DIGEST_WIDTH, "height": charts.DIGEST_HEIGHT},
        )


@router.get("/executions/{execution_id}/state")
async def execution_state(request: Request, execution_id: str) -> Response:
    """Answer the status alone, for the execution page to poll while the run is open."""
    async with api_for(request) as api:
        execution = (await api.get(f"/api/cron/executions/{execution_id}"))["data"]
    status = execution["status"]
    return JSONResponse({"status": status, "terminal": status in TERMINAL})


def _limit(platform: object) -> int | None:
    found = PLATFORMS.get(str(platform))
    return found.max_characters if found else None
