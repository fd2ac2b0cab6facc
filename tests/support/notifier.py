"""The notifier's handler on a stubbed wire: every HTTP request recorded, each answered 200."""

from __future__ import annotations

from typing import Any

import httpx

from services.notifier.channels import Channels
from services.notifier.handlers import make_handler
from shared.secrets import generate_key
from shared.settings import Settings
from tests.support.bus import RecordingBus

KEY = generate_key()


class Wire:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"id": "e1"})


def handler_on(wire: Wire, bus: RecordingBus) -> Any:
    settings = Settings(
        secret_key=KEY,
        email_from="herald <h@herald.test>",
        resend_api_key="re_k",
        resend_api_url="https://api.resend.test",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(wire))
    return make_handler(bus, Channels(settings, http))
