"""Input guards in front of every route: body size (413) and NUL bytes in the URL (422).

A pure ASGI middleware, so a huge body is refused before the app reads it: by its
`Content-Length` when it declares one; a streamed body is read up to the limit first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_TYPE = "application/problem+json"


def _problem(status: int, detail: str, path: str, field: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": path,
        "success": False,
    }
    if field is not None:
        body["errors"] = [{"field": field, "message": detail}]
    return json.dumps(body).encode()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _has_nul(scope: Scope) -> str | None:
    """Name the URL part that carries a NUL byte (PostgreSQL cannot store one in text)."""
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    if b"\x00" in unquote_to_bytes(raw_path) or "\x00" in scope.get("path", ""):
        return "path"
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return "query"
    return None


class InputGuard:
    """Refuse bodies larger than `max_body` bytes and URLs carrying NUL bytes."""

    def __init__(
        self, app: ASGIApp, *, max_body: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        # Paths whose bodies may exceed `max_body`, with their own limit.
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        where = _has_nul(scope)
        if where is not None:
            detail = "NUL bytes are not allowed"
            await _answer(send, 422, _problem(422, detail, path.replace("\x00", ""), where))
            return
        limit = self.larger.get(path, self.max_body)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, _too_large(limit, path))
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # A streamed body: read it (at most the limit) before the app sees any of it.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await _answer(send, 413, _too_large(limit, path))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int, path: str) -> bytes:
    return _problem(413, f"request body larger than {limit} bytes", path, "body")
