"""The web console: server-rendered pages under /console over the app's own REST API."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles

from services.api.console import (
    alert_pages,
    credentials,
    job_pages,
    post_pages,
    project_pages,
    publishing_pages,
    recipient_pages,
    run_pages,
    signin,
)
from services.api.console.client import ApiError
from services.api.console.rendering import HERE, LANDING, plain, see_other

PREFIX = "/console"


def mount(app: FastAPI) -> None:
    """Serve the console from `app`, calling `app`'s own API with the signed-in user's token."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("")
    async def home() -> Response:
        return see_other(f"{PREFIX}/jobs")

    for pages in (
        signin.router,
        # After job_pages: its /projects/new is not a project's id.
        job_pages.router,
        project_pages.router,
        run_pages.router,
        alert_pages.router,
        post_pages.router,
        publishing_pages.router,
        recipient_pages.router,
    ):
        router.include_router(pages)
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        """A browser goes to the console; an API client gets the index of what is here."""
        if "text/html" in request.headers.get("accept", ""):
            return see_other(PREFIX)
        return JSONResponse(
            {
                "name": "herald",
                "api": "/api",
                "console": PREFIX,
                "docs": "/docs",
                "openapi": "/openapi.json",
                "health": {"live": "/livez", "ready": "/readyz", "metrics": "/metrics"},
            }
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return see_other(f"{PREFIX}/static/favicon.svg")

    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(ApiError, _on_api_error)  # type: ignore[arg-type]


async def _on_api_error(request: Request, exc: ApiError) -> Response:
    """Turn the API's refusals into pages: sign in again, not found, or what went wrong."""
    wants_json = "application/json" in request.headers.get("accept", "")
    if wants_json:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)
    if exc.status == 401:
        expired = credentials.session_of(request) is not None
        query = {"expired": "1"} if expired else {}
        url = request.url
        if request.method == "GET" and url.path != LANDING:
            # A link from an email or an alert leads back to its page once signed in.
            query["next"] = url.path + (f"?{url.query}" if url.query else "")
        response = see_other(f"{PREFIX}/signin" + (f"?{urlencode(query)}" if query else ""))
        credentials.forget_session(response)
        return response
    if exc.status == 404:
        return plain(request, "error.html", 404, title="Not found", detail="There is nothing here.")
    return plain(request, "error.html", exc.status, title="Something went wrong", detail=exc.detail)
