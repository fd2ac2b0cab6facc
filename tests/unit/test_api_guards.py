"""The API's input guards without a server: body size, NUL bytes, JWT shapes, fingerprints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from services.api.guards import InputGuard
from services.api.jwt_auth import looks_like_jwt
from services.api.requests import CreateProject, TriggerJob
from services.api.triggers import request_fingerprint


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _call(
    path: str, chunks: list[bytes], *, length: int | None, query: bytes = b""
) -> tuple[int, bytes]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await InputGuard(_echo, max_body=10)(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_small_bodies_pass_through_whole() -> None:
    assert await _call("/x", [b"12345"], length=5) == (200, b"12345")
    assert await _call("/x", [b"123", b"45"], length=None) == (200, b"12345")


async def test_declared_or_streamed_bodies_over_the_limit_answer_413() -> None:
    status, body = await _call("/x", [b"x" * 11], length=11)
    assert status == 413
    assert json.loads(body)["errors"][0]["field"] == "body"
    status, body = await _call("/x", [b"x" * 6, b"x" * 6], length=None)
    assert (status, json.loads(body)["success"]) == (413, False)


async def test_nul_bytes_in_the_url_answer_422() -> None:
    status, body = await _call("/api/x%00y", [b""], length=0)
    assert (status, json.loads(body)["errors"][0]["field"]) == (422, "path")
    status, body = await _call("/api/x", [b""], length=0, query=b"jobId=a%00")
    assert (status, json.loads(body)["errors"][0]["field"]) == (422, "query")


def test_request_bodies_refuse_nul_bytes_naming_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        CreateProject.model_validate({"name": "a\x00"})
    assert raised.value.errors()[0]["loc"] == ("name",)
    with pytest.raises(ValidationError):
        TriggerJob.model_validate({"jobId": "\x00"})
    assert CreateProject.model_validate({"name": "🚀 تقرير"}).name == "🚀 تقرير"


def test_fingerprints_ignore_key_order_and_tell_bodies_apart() -> None:
    assert request_fingerprint({"a": 1, "b": 2}) == request_fingerprint({"b": 2, "a": 1})
    assert request_fingerprint({"jobId": "x"}) != request_fingerprint({"jobId": "y"})


def test_only_three_part_tokens_are_taken_for_jwts() -> None:
    assert looks_like_jwt("eyJhbGciOi.eyJzdWIi.c2ln")
    assert not looks_like_jwt("hrld_abc.def.ghi")
    assert not looks_like_jwt("eyJ.only-two")
