"""The signed-in user's token in an HttpOnly cookie, and the CSRF check of every form post."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "herald_console"
COOKIE_PATH = "/console"


def token_of(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def keep_token(response: Response, request: Request, token: str) -> None:
    # HttpOnly: no script reads the token. Lax: other sites' forms arrive without it.
    response.set_cookie(
        COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def forget_token(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


def csrf_token(token: str) -> str:
    """Derive the form token from the credential: only someone holding the cookie can know it.

    Stateless, so it survives restarts and replicas, and changes when the credential does.
    """
    return hmac.new(token.encode(), b"herald-console-form", hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """Refuse a post whose Origin (or, lacking one, Referer) names another site."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        # Browsers send Origin on every cross-site POST; a missing one is a same-site client.
        return source is None
    parts = urlsplit(source)
    host = request.headers.get("host", "")
    return parts.netloc == host


def valid_form(request: Request, submitted: str | None) -> bool:
    token = token_of(request)
    if token is None or submitted is None or not same_origin(request):
        return False
    return hmac.compare_digest(csrf_token(token), submitted)
