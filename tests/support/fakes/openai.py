"""A local OpenAI-compatible `/v1/chat/completions` server (PROTOCOLS.md §3.1, §12).

Success bodies carry `usage`; a script of failures answers the next requests in order:
429 `rate_limit_exceeded` with `retry-after`, 429 `insufficient_quota`, 500, 503 and so on.
It can take `delay` seconds per completion (a real model takes seconds) and enforce a
requests- and tokens-per-minute limit over a moving minute, as OpenAI does: every answer
carries `x-ratelimit-limit|remaining|reset-requests|tokens` (resets as durations like `6m0s`,
`1.5s`), and a request beyond the limit answers 429 `rate_limit_exceeded` with `retry-after`.
A request counts `max_completion_tokens` plus its prompt's tokens, as OpenAI reserves them.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes.script import next_step
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
    # Told to announce a release, it names it first, as a model does.
    release = re.search(r"^Announce release: (.+)$", user, re.M)
    if release:
        body = f"Out now: {release.group(1)}. {body}"
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
    # Answers for one platform's calls, in order, before the shared script: calls of one
    # execution's platforms arrive at once, in no fixed order.
    scripts: dict[str, list[Failure | str]] = field(default_factory=dict)
    reply: Callable[[str, str], str] = default_reply
    calls: list[Call] = field(default_factory=list)
    delay: float = 0.0
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    # What the limits saw: accepted requests' times (monotonic) and how many were refused.
    accepted: list[float] = field(default_factory=list)
    rejected: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    _window: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._handle, methods=["POST"])])

    def most_in_any_minute(self) -> int:
        """The most accepted requests any 60-second window held (the limit's own measure)."""
        times, most, first = sorted(self.accepted), 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= 60:
                first += 1
            most = max(most, last - first + 1)
        return most

    def _admit(self, cost: int) -> tuple[bool, dict[str, str]]:
        """Count a request against the moving minute; whether it may go, and the headers."""
        with self._lock:
            now = time.monotonic()
            while self._window and now - self._window[0][0] >= 60:
                self._window.popleft()
            used_requests = len(self._window)
            used_tokens = sum(tokens for _, tokens in self._window)
            allowed = (
                self.requests_per_minute is None or used_requests < self.requests_per_minute
            ) and (self.tokens_per_minute is None or used_tokens + cost <= self.tokens_per_minute)
            if allowed:
                self._window.append((now, cost))
                self.accepted.append(now)
                used_requests, used_tokens = used_requests + 1, used_tokens + cost
            else:
                self.rejected += 1
            oldest = self._window[0][0] if self._window else now
            newest = self._window[-1][0] if self._window else now
            headers = {}
            if self.requests_per_minute is not None:
                headers |= {
                    "x-ratelimit-limit-requests": str(self.requests_per_minute),
                    "x-ratelimit-remaining-requests": str(
                        max(0, self.requests_per_minute - used_requests)
                    ),
                    "x-ratelimit-reset-requests": _duration(max(0.0, newest + 60 - now)),
                }
            if self.tokens_per_minute is not None:
                headers |= {
                    "x-ratelimit-limit-tokens": str(self.tokens_per_minute),
                    "x-ratelimit-remaining-tokens": str(
                        max(0, self.tokens_per_minute - used_tokens)
                    ),
                    "x-ratelimit-reset-tokens": _duration(max(0.0, newest + 60 - now)),
                }
            if not allowed:
                headers["retry-after"] = str(max(1, int(oldest + 60 - now + 0.999)))
            return allowed, headers

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
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        limits: dict[str, str] = {}
        if self.requests_per_minute is not None or self.tokens_per_minute is not None:
            cost = tokens(system + user) + int(body.get("max_completion_tokens") or 0)
            allowed, limits = self._admit(cost)
            if not allowed:
                return self._limited(limits)
        step = next_step(self.script, self.scripts, body)
        if isinstance(step, Failure):
            return self._error(step)
        content = step if isinstance(step, str) else self.reply(system, user)
        if self.delay:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
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
            headers={**self._headers(), **limits},
        )

    def _limited(self, limits: dict[str, str]) -> Response:
        kind = "requests" if limits.get("x-ratelimit-remaining-requests") == "0" else "tokens"
        body = {
            "error": {
                "message": f"Rate limit reached for gpt-test on {kind} per min. "
                f"Please try again in {limits.get('retry-after', '1')}s.",
                "type": kind,
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
        return JSONResponse(body, status_code=429, headers={**self._headers(), **limits})


def _duration(seconds: float) -> str:
    """OpenAI's reset duration: `12ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{rest:.0f}s"
    return f"{rest:.3g}s"
