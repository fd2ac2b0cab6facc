"""A local Resend API (`POST /emails`) with its auth, validation, idempotency and rate limits.

Faithful to PROTOCOLS.md: Bearer auth (401 missing_api_key, 403 invalid_api_key); errors as
`{"statusCode", "message", "name"}`; `Idempotency-Key` (<= 256 chars, remembered: the same key
and body answer the first response again without sending, the same key with another body
answers 409 invalid_idempotent_request); `ratelimit-*` headers on every answer and 429
rate_limit_exceeded with `retry-after` past `rate_per_second`; daily quota 429s.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    """An error to answer instead of the next request's normal response."""

    status: int
    name: str
    message: str = "scripted error"
    retry_after: float | None = None


@dataclass
class FakeResend:
    api_key: str = "re_test_key"
    rate_per_second: float | None = None
    daily_quota: int | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    scripted: deque[Scripted] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._idempotent: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._window: deque[float] = deque()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, headers = fake.handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeResend:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(
        self, status: int, name: str, *, retry_after: float | None = None, times: int = 1
    ) -> None:
        for _ in range(times):
            self.scripted.append(Scripted(status, name, retry_after=retry_after))

    def handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        lower = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            self.requests.append({"path": path, "headers": lower, "raw": raw})
            limits = self._rate_headers()
            if path.split("?")[0] != "/emails":
                return _error(404, "not_found", "The requested endpoint does not exist.", limits)
            auth = lower.get("authorization", "")
            if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
                return _error(
                    401, "missing_api_key", "Missing API key in the authorization header.", limits
                )
            if auth.removeprefix("Bearer ").strip() != self.api_key:
                return _error(403, "invalid_api_key", "API key is invalid.", limits)
            if self.scripted:
                step = self.scripted.popleft()
                extra = dict(limits)
                if step.retry_after is not None:
                    extra["retry-after"] = str(math.ceil(step.retry_after))
                    extra["ratelimit-remaining"] = "0"
                return _error(step.status, step.name, step.message, extra)
            if self._over_rate():
                wait = self._retry_after()
                extra = {**limits, "ratelimit-remaining": "0", "retry-after": str(wait)}
                return _error(
                    429,
                    "rate_limit_exceeded",
                    "Too many requests. You can only make "
                    f"{self.rate_per_second} requests per second.",
                    extra,
                )
            key = lower.get("idempotency-key")
            if key is not None and (not key or len(key) > 256):
                return _error(
                    400, "invalid_idempotency_key", "The key must be between 1-256 chars.", limits
                )
            try:
                payload = json.loads(raw)
            except ValueError:
                return _error(400, "validation_error", "Invalid JSON body.", limits)
            digest = hashlib.sha256(raw).hexdigest()
            if key is not None and key in self._idempotent:
                known_digest, status, body = self._idempotent[key]
                if known_digest != digest:
                    return _error(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload. "
                        "Change your idempotency key or payload.",
                        limits,
                    )
                return status, body, limits
            for name in ("from", "to", "subject"):
                if not payload.get(name):
                    return _error(422, "missing_required_field", f"Missing `{name}` field.", limits)
            if not (payload.get("html") or payload.get("text") or payload.get("template")):
                return _error(
                    422,
                    "missing_required_field",
                    "Missing `html`, `text` or `template` field.",
                    limits,
                )
            if self.daily_quota is not None and len(self.sent) >= self.daily_quota:
                return _error(
                    429,
                    "daily_quota_exceeded",
                    "You have reached your daily email sending quota.",
                    limits,
                )
            body = {"id": str(uuid.uuid4())}
            self.sent.append({**payload, "id": body["id"], "idempotency_key": key})
            if key is not None:
                self._idempotent[key] = (digest, 200, body)
            return 200, body, limits

    def _over_rate(self) -> bool:
        if self.rate_per_second is None:
            return False
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_per_second:
            return True
        self._window.append(now)
        return False

    def _retry_after(self) -> int:
        if not self._window:
            return 1
        return max(1, math.ceil(1.0 - (time.monotonic() - self._window[0])))

    def _rate_headers(self) -> dict[str, str]:
        limit = self.rate_per_second or 5
        remaining = max(int(limit) - len(self._window), 0)
        return {
            "ratelimit-limit": str(int(limit)),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": "1",
        }


def _error(
    status: int, name: str, message: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"statusCode": status, "message": message, "name": name}, headers
