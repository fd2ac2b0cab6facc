"""A local Discord webhook server: 204 (200 + message with `wait=true`), JSON errors, 429s.

Webhooks are registered by id and token (`/api/v10/webhooks/{id}/{token}`); others answer
404 `{"code": 10015, "message": "Unknown Webhook"}`. A message with no content and no embeds
is 400 code 50006; content above 2,000 characters or an embed past its limits is 400 code
50035 "Invalid Form Body". Rate-limit headers on every answer; past `rate_per_second` a 429
with a JSON `retry_after` (float seconds) and `Retry-After`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeDiscord:
    rate_per_second: float | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    scripted: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: set[str] = set()
        self._recent: dict[str, deque[float]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body, headers = fake.handle(self.path, raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if body is None:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeDiscord:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def webhook(self, webhook_id: str = "112233445566778899", token: str = "tok-en") -> str:  # noqa: S107
        """Register a webhook and return its URL."""
        path = f"/api/v10/webhooks/{webhook_id}/{token}"
        self._hooks.add(path)
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def rate_limit_next(self, retry_after: float = 0.25, *, global_: bool = False) -> None:
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": global_,
        }
        self.scripted.append((429, body))

    def fail_next(self, status: int, code: int, message: str) -> None:
        self.scripted.append((status, {"code": code, "message": message}))

    def handle(self, target: str, raw: bytes) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        parts = urlsplit(target)
        with self._lock:
            if parts.path not in self._hooks:
                return 404, {"code": 10015, "message": "Unknown Webhook"}, {}
            headers = self._rate_headers(parts.path)
            if self.scripted:
                status, body = self.scripted.popleft()
                if status == 429:
                    headers |= _limited(float(body["retry_after"]), bool(body.get("global")))
                return status, body, headers
            if self._over_rate(parts.path):
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": 1.0,
                    "global": False,
                }
                return 429, body, headers | _limited(1.0, False)
            try:
                payload = json.loads(raw)
            except ValueError:
                return (
                    400,
                    {"code": 50109, "message": "The request body contains invalid JSON."},
                    headers,
                )
            if not isinstance(payload, dict) or not (
                payload.get("content") or payload.get("embeds")
            ):
                return 400, {"code": 50006, "message": "Cannot send an empty message"}, headers
            if problem := _invalid(payload):
                return (
                    400,
                    {
                        "code": 50035,
                        "message": "Invalid Form Body",
                        "errors": {problem: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                    },
                    headers,
                )
            self.received.append(payload)
            if parse_qs(parts.query).get("wait") == ["true"]:
                return (
                    200,
                    {
                        "id": str(len(self.received)),
                        "content": payload.get("content", ""),
                        "embeds": payload.get("embeds", []),
                    },
                    headers,
                )
            return 204, None, headers

    def _over_rate(self, path: str) -> bool:
        if self.rate_per_second is None:
            return False
        now = time.monotonic()
        recent = self._recent.setdefault(path, deque())
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= self.rate_per_second:
            return True
        recent.append(now)
        return False

    def _rate_headers(self, path: str) -> dict[str, str]:
        limit = int(self.rate_per_second or 5)
        used = len(self._recent.get(path, ()))
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - used - 1, 0)),
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": "fakebucket",
        }


def _limited(retry_after: float, global_: bool) -> dict[str, str]:
    return {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Scope": "global" if global_ else "user",
        "X-RateLimit-Global": "true" if global_ else "false",
    }


def _invalid(payload: dict[str, Any]) -> str | None:
    if len(payload.get("content") or "") > 2000:
        return "content"
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        return "embeds"
    for n, embed in enumerate(embeds):
        fields = embed.get("fields") or []
        total = len(embed.get("title") or "") + len(embed.get("description") or "")
        if len(embed.get("title") or "") > 256 or len(embed.get("description") or "") > 4096:
            return f"embeds.{n}"
        if len(fields) > 25:
            return f"embeds.{n}.fields"
        for field_ in fields:
            if len(field_.get("name") or "") > 256 or len(field_.get("value") or "") > 1024:
                return f"embeds.{n}.fields"
            total += len(field_.get("name") or "") + len(field_.get("value") or "")
        if total > 6000:
            return f"embeds.{n}"
    return None
