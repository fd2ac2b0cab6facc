"""Deny by default: every route of the app needs credentials unless it is listed here.

`require_credentials` is a dependency of the whole app, so a route added tomorrow is refused
to an anonymous caller whether or not its author remembered `UserDep`. The public routes are
named one by one, by their full path in the app's route table: the probes and metrics, the
API's documentation, and the console pages one reaches without a session (signing in,
confirming an alert recipient). Console pages need the session cookie (the API calls they
make check it); everything else needs a bearer credential, resolved by
`services.api.auth.authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from services.api.auth import authenticate
from services.api.console import PREFIX as CONSOLE
from services.api.console import credentials
from services.api.console.client import ApiError
from services.api.deps import SessionDep, StateDep

#: Full paths served to anyone. The documentation routes and the console's static files are
#: not API routes (no dependency runs for them); they are listed so the list is the whole truth.
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/favicon.ico",
        "/livez",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/docs/static",
        "/redoc",
        # Authenticated by the signature of each delivery, not a bearer credential.
        "/api/webhooks/github",
        # Only sends the browser on to the jobs page, which asks for the session.
        CONSOLE,
        f"{CONSOLE}/signin",
        f"{CONSOLE}/recipients/confirm",
        f"{CONSOLE}/static",
    }
)


@dataclass(frozen=True)
class Access:
    public: frozenset[int]
    console: frozenset[int]


def install(app: FastAPI) -> None:
    """Sort the app's routes, once all are added: `require_credentials` reads the result.

    Routes are known by identity: a route inside an included router knows only its path
    relative to that router, so its full path is read from the route table here.
    """
    public, console = set(), set()
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        route: BaseRoute = context.original_route
        if path in PUBLIC_PATHS:
            public.add(id(route))
        elif path == CONSOLE or path.startswith(f"{CONSOLE}/"):
            console.add(id(route))
    app.state.access = Access(frozenset(public), frozenset(console))


def public_paths(app: FastAPI) -> set[str]:
    """The full paths of the app's routes that `require_credentials` lets anyone reach."""
    access: Access = app.state.access
    return {
        context.path or ""
        for context in iter_route_contexts(app.routes)
        if id(context.original_route) in access.public
    }


async def require_credentials(request: Request, session: SessionDep, state: StateDep) -> None:
    access: Access = request.app.state.access
    route = id(request.scope.get("route"))
    if route in access.public:
        return
    if route in access.console:
        if credentials.session_of(request) is None:
            raise ApiError(401, "sign in to continue", [])
        return
    await authenticate(request, session, state)
