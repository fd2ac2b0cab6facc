"""A local Anthropic Messages `/v1/messages` server (PROTOCOLS.md §3.2).

Checks `x-api-key` and `anthropic-version`; success bodies carry `usage`; a script of
failures answers the next requests in order: 429 `rate_limit_error` with `retry-after`,
500 `api_error`, 529 `overloaded_error`, 429 `enforced_spend_limit_reached`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes.openai import Call, default_reply, tokens
from tests.support.fakes.script import next_step
from tests.support.fakes.server import ThreadedServer


@dataclass
class Failure:
    status: int
    type: str
    retry_after: int | None = None
    error_code: str | None = None
    message: str = "failure"


RATE_LIMITED = Failure(
    429,
    "rate_limit_error",
    retry_after=1,
    message="This request would exceed the rate limit for your organization.",
)
OVERLOADED = Failure(529, "overloaded_error", message="Overloaded")
SERVER_ERROR = Failure(500, "api_error", message="Internal server error")
SPEND_LIMIT = Failure(
    429,
    "rate_limit_error",
    error_code="enforced_spend_limit_reached",
    message="You have reached your specified workspace API usage limits.",
)


@dataclass
class FakeAnthropic:
    api_key: str = "sk-ant-test"
    script: list[Failure | str] = field(default_factory=list)
    # Answers for one platform's calls, in order, before the shared script: calls of one
    # execution's platforms arrive at once, in no fixed order.
    scripts: dict[str, list[Failure | str]] = field(default_factory=dict)
    reply: Callable[[str, str], str] = default_reply
    calls: list[Call] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self._handle, methods=["POST"])])

    def serve(self) -> ThreadedServer:
        return ThreadedServer(self.app).start()

    def _error(self, failure: Failure) -> Response:
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        headers = {"request-id": request_id}
        if failure.retry_after is not None:
            headers["retry-after"] = str(failure.retry_after)
        error: dict[str, Any] = {"type": failure.type, "message": failure.message}
        if failure.error_code:
            error["details"] = {"error_code": failure.error_code}
        body = {"type": "error", "error": error, "request_id": request_id}
        return JSONResponse(body, status_code=failure.status, headers=headers)

    async def _handle(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        self.calls.append(Call({k.lower(): v for k, v in request.headers.items()}, body or {}))
        if request.headers.get("x-api-key") != self.api_key:
            return self._error(Failure(401, "authentication_error", message="invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            return self._error(
                Failure(
                    400, "invalid_request_error", message="anthropic-version: header is required"
                )
            )
        if not isinstance(body, dict) or not {"model", "max_tokens", "messages"} <= set(body):
            return self._error(
                Failure(
                    400, "invalid_request_error", message="model, max_tokens, messages: required"
                )
            )
        step = next_step(self.script, self.scripts, body)
        if isinstance(step, Failure):
            return self._error(step)
        system = body.get("system") or ""
        user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        text = step if isinstance(step, str) else self.reply(system, user)
        return JSONResponse(
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "model": body["model"],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": tokens(system + user),
                    "output_tokens": tokens(text),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
            headers={
                "request-id": f"req_{uuid.uuid4().hex[:24]}",
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "49",
                "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:01Z",
            },
        )
