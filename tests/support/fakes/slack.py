"""A local Slack incoming-webhook server: 200 `ok`, plain-text error codes, 429 Retry-After.

Webhooks are registered by path (`/services/T000/B000/XXXX`); any other path answers 404
`no_service` (a revoked URL). Validation follows PROTOCOLS.md: a body that is not JSON is
400 `invalid_payload`; neither `text` nor `blocks` is 400 `no_text`; a section text above
3,000 characters is 400 `invalid_blocks`. Past `rate_per_second` per webhook: 429 with
`Retry-After` whole seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeSlack:
    rate_per_second: float | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    scripted: deque[tuple[int, str, int | None]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: set[str] = set()
        self._recent: dict[str, deque[float]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, text, headers = fake.handle(self.path, raw)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def webhook(self, name: str = "XXXXXXXXXXXXXXXXXXXXXXXX") -> str:
        """Register a webhook and return its URL."""
        path = f"/services/T0000000/B0000000/{name}"
        self._hooks.add(path)
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def fail_next(self, status: int, text: str, *, retry_after: int | None = None) -> None:
        self.scripted.append((status, text, retry_after))

    def handle(self, path: str, raw: bytes) -> tuple[int, str, dict[str, str]]:
        with self._lock:
            if path not in self._hooks:
                return 404, "no_service", {}
            if self.scripted:
                status, text, retry_after = self.scripted.popleft()
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, text, headers
            if self._over_rate(path):
                return 429, "rate_limited", {"Retry-After": "1"}
            try:
                payload = json.loads(raw)
            except ValueError:
                return 400, "invalid_payload", {}
            if not isinstance(payload, dict):
                return 400, "invalid_payload", {}
            if not payload.get("text") and not payload.get("blocks"):
                return 400, "no_text", {}
            for block in payload.get("blocks") or []:
                text = (block.get("text") or {}).get("text", "")
                if block.get("type") == "section" and len(text) > 3000:
                    return 400, "invalid_blocks", {}
                if block.get("type") == "header" and len(text) > 150:
                    return 400, "invalid_blocks", {}
            self.received.append(payload)
            return 200, "ok", {}

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
