"""The console session's secret in an HttpOnly cookie, and the CSRF check of every form post."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "herald_console"
COOKIE_PATH = "/console"


def session_of(request: Request) -> str | None:
    """The session secret the browser sent, if any."""
    return request.cookies.get(COOKIE) or None


def keep_session(response: Response, request: Request, secret: str) -> None:
    # HttpOnly: no script reads the secret. Lax: other sites' forms arrive without it.
    response.set_cookie(
        COOKIE,
        secret,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def forget_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


def csrf_token(secret: str) -> str:
    """Derive the form token from the session: only someone holding the cookie can know it.

    Stateless, so it survives restarts and replicas, and changes with every sign-in.
    """
    return hmac.new(secret.encode(), b"herald-console-form", hashlib.sha256).hexdigest()


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
    secret = session_of(request)
    if secret is None or submitted is None or not same_origin(request):
        return False
    return hmac.compare_digest(csrf_token(secret), submitted)
