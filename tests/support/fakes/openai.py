"""A local OpenAI-compatible `/v1/chat/completions` server (PROTOCOLS.md §3.1).

Success bodies carry `usage`; a script of failures answers the next requests in order:
429 `rate_limit_exceeded` with `retry-after`, 429 `insufficient_quota`, 500, 503 and so on.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes.server import ThreadedServer


@dataclass
class Failure:
    """One scripted error answer."""

    status: int
    code: str | None = None
    retry_after: int | None = None
    message: str = "failure"


RATE_LIMITED = Failure(
    429,
    "rate_limit_exceeded",
    retry_after=1,
    message="Rate limit reached for requests. Please try again in 1s.",
)
INSUFFICIENT_QUOTA = Failure(
    429,
    "insufficient_quota",
    message="You exceeded your current quota, please check your plan and billing details.",
)
SERVER_ERROR = Failure(500, None, message="The server had an error while processing your request.")


def default_reply(system: str, user: str) -> str:
    """A short, valid JSON post built from the prompt's facts."""
    project = re.search(r"^Project: (.+)$", user, re.M)
    counts = re.search(r"^Commits: .+$", user, re.M)
    name = project.group(1) if project else "the project"
    body = f"What happened in {name}: {counts.group(0) if counts else 'activity'}."
    if '"title"' in system:
        return json.dumps({"title": f"{name} update", "body": f"# {name} update\n\n{body}\n"})
    return json.dumps({"body": body})


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass
class Call:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    api_key: str = "sk-test"
    script: list[Failure | str] = field(default_factory=list)
    reply: Callable[[str, str], str] = default_reply
    calls: list[Call] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._handle, methods=["POST"])])

    def serve(self) -> ThreadedServer:
        return ThreadedServer(self.app).start()

    def _headers(self) -> dict[str, str]:
        return {
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "199000",
            "x-ratelimit-reset-tokens": "6m0s",
        }

    def _error(self, failure: Failure, kind: str | None = None) -> Response:
        headers = self._headers()
        if failure.retry_after is not None:
            headers["retry-after"] = str(failure.retry_after)
        body = {
            "error": {
                "message": failure.message,
                "type": kind or failure.code or "server_error",
                "param": None,
                "code": failure.code,
            }
        }
        return JSONResponse(body, status_code=failure.status, headers=headers)

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.calls.append(Call({k.lower(): v for k, v in request.headers.items()}, body or {}))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(
                Failure(401, "invalid_api_key", message="Incorrect API key provided."),
                "invalid_request_error",
            )
        if not isinstance(body, dict) or "model" not in body or not body.get("messages"):
            return self._error(
                Failure(400, None, message="you must provide a model and messages"),
                "invalid_request_error",
            )
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Failure):
            return self._error(step)
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        content = step if isinstance(step, str) else self.reply(system, user)
        prompt_tokens, completion_tokens = tokens(system + user), tokens(content)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": content,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_herald",
            },
            headers=self._headers(),
        )
