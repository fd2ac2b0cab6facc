"""A local receiver of WEBHOOK jobs' deliveries, checking each as a real receiver would.

Every POST is recorded with its delivery id and whether its `X-Herald-Signature-256` signs
the raw body with the secret the receiver was given (`secret`, set once the job's secret is
known). It answers the statuses scripted in `scripted` first (with their headers), then
`status` (200). A delivery whose signature does not match is answered 401 and recorded.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.signatures import signature_matches


@dataclass(frozen=True)
class Received:
    delivery_id: str | None
    event: str | None
    signature_valid: bool
    user_agent: str | None
    body: dict[str, Any]
    answered: int


@dataclass
class WebhookReceiver:
    secret: str = ""
    status: int = 200
    scripted: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = receiver.handle(self.path, dict(self.headers.items()), raw)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/herald"

    def answer(self, status: int, **headers: str) -> None:
        """Answer the next delivery with `status` (and these headers), before the default."""
        self.scripted.append((status, headers))

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str]]:
        lowered = {name.lower(): value for name, value in headers.items()}
        valid = bool(self.secret) and signature_matches(
            self.secret, raw, lowered.get("x-herald-signature-256")
        )
        with self._lock:
            if not valid:
                status, answer_headers = 401, {}
            elif self.scripted:
                status, answer_headers = self.scripted.popleft()
            else:
                status, answer_headers = self.status, {}
            self.received.append(
                Received(
                    delivery_id=lowered.get("x-herald-delivery"),
                    event=lowered.get("x-herald-event"),
                    signature_valid=valid,
                    user_agent=lowered.get("user-agent"),
                    body=json.loads(raw) if raw else {},
                    answered=status,
                )
            )
        return status, answer_headers

    def of(self, execution_id: str) -> list[Received]:
        with self._lock:
            return [item for item in self.received if item.body.get("executionId") == execution_id]
