"""What a network answered for a post, and how its refusals read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from shared.errors import PermanentError, TransientError
from shared.outbound import ForbiddenDestinationError, origin_of

MESSAGE_EXCERPT = 200
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")


@dataclass(frozen=True)
class Published:
    """A post as the network holds it."""

    network: str
    # Mastodon's status id; Bluesky's `at://` URI.
    id: str
    # Where a reader opens it.
    url: str
    # Bluesky's content id of the record; None on Mastodon.
    cid: str | None = None
    # True when an earlier attempt had already published it and this one found it.
    earlier: bool = False


class CredentialsRejectedError(PermanentError):
    """The network refused the account's credentials: they must be replaced."""


class NetworkRefusedError(PermanentError):
    """The network refused the post; sending it again unchanged cannot help."""


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or an empty one when it has none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def excerpt(text: object) -> str:
    """A short, printable quote of what the network said (never more than 200 characters)."""
    cleaned = _UNPRINTABLE.sub(" ", str(text)).strip()
    if len(cleaned) > MESSAGE_EXCERPT:
        return cleaned[: MESSAGE_EXCERPT - 1] + "…"
    return cleaned


def unreachable(network: str, exc: httpx.TimeoutException | httpx.TransportError) -> TransientError:
    """The network not answering: worth trying again later (the keys make it safe)."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{network} timed out: {exc.__class__.__name__}")
    return TransientError(f"{network} unreachable: {exc.__class__.__name__}")


HTTP_REFUSED = "must be an https URL (this server does not allow http: HERALD_WEBHOOK_ALLOW_HTTP)"


def require_https(url: str | httpx.URL, *, what: str, allow_http: bool) -> None:
    """Refuse plain http, which would carry a credential (a token, a password, a signed post)
    readable on the way, unless the operator allowed it (a test double, their own network)."""
    if httpx.URL(str(url)).scheme != "https" and not allow_http:
        raise ForbiddenDestinationError(f"{what} {HTTP_REFUSED}")


def base_origin(url: str, *, what: str, allow_http: bool = False) -> str:
    """The server's origin (`https://mastodon.social`), refusing anything but a bare one."""
    origin = origin_of(url)
    parsed = httpx.URL(url)
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ForbiddenDestinationError(f"{what} must be an origin, with no path")
    require_https(parsed, what=what, allow_http=allow_http)
    return str(origin)
