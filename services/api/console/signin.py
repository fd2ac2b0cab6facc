"""Signing in with an API token, and out again."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.api.abuse import client_address
from services.api.console import credentials, sessions
from services.api.console.forms import Form
from services.api.console.rendering import console_page, plain, refused_form, see_other
from services.api.deps import app_state

router = APIRouter()

EXPIRED = "Your session has ended. Sign in again."


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    message = EXPIRED if request.query_params.get("expired") else None
    after = console_page(request.query_params.get("next"))
    return plain(request, "signin.html", message=message, errors={}, next_page=after)


@router.post("/signin")
async def signin(request: Request) -> Response:
    # No cookie yet, so no form token: a cross-site sign-in is refused by its Origin.
    if not credentials.same_origin(request):
        return refused_form(request)
    state = app_state(request)
    address = client_address(request)
    form = await Form.read(request)
    token, after = form.get("token"), console_page(form.get("next"))
    wait = state.failed_auth.refused_for(address)
    if wait is not None:
        return _too_many(request, wait, after)
    if not token:
        return plain(
            request,
            "signin.html",
            422,
            errors={"token": "Enter your API token."},
            next_page=after,
        )
    secret = await sessions.begin(
        state, token=token.strip(), replacing=credentials.session_of(request)
    )
    if secret is None:
        wait = await state.failed_auth.failed(address)
        if wait is not None:
            return _too_many(request, wait, after)
        return plain(
            request,
            "signin.html",
            401,
            errors={"token": "This token is not valid."},
            next_page=after,
        )
    response = see_other(after)
    credentials.keep_session(response, request, secret)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    if not credentials.valid_form(request, (await Form.read(request)).get("csrf")):
        return refused_form(request)
    secret = credentials.session_of(request)
    if secret is not None:
        await sessions.end(app_state(request), secret)
    response = see_other("/console/signin")
    credentials.forget_session(response)
    return response


def _too_many(request: Request, wait: int, after: str) -> Response:
    message = f"Too many failed sign-ins from this address. Try again in {wait} seconds."
    response = plain(request, "signin.html", 429, errors={"token": message}, next_page=after)
    response.headers["Retry-After"] = str(wait)
    return response
