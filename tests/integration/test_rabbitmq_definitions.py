"""deploy/rabbitmq/definitions.json matches what the services declare on a live broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from shared.bus import AmqpBus
from shared.definitions import definitions, render

FILE = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"


def management(url: str, path: str) -> Any:
    parts = urlsplit(url)
    vhost = quote(unquote(parts.path[1:]) or "/", safe="")
    response = httpx.get(
        f"http://{parts.hostname}:15672/api/{path.format(vhost=vhost)}",
        auth=(parts.username or "guest", parts.password or "guest"),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def test_the_definitions_file_is_current() -> None:
    assert FILE.read_text() == render(), (
        "run: herald definitions > deploy/rabbitmq/definitions.json"
    )


async def test_the_live_topology_is_the_definitions(fresh_amqp_url: str) -> None:
    bus = AmqpBus(fresh_amqp_url, service="definitions", delivery_limit=5)
    await bus.start()
    try:
        expected = definitions(vhost=unquote(urlsplit(fresh_amqp_url).path[1:]))
        queues = {
            row["name"]: row["arguments"]
            for row in management(fresh_amqp_url, "queues/{vhost}")
            if row["name"].startswith("herald.")
        }
        assert queues == {queue["name"]: queue["arguments"] for queue in expected["queues"]}
        exchanges = {
            row["name"]: row["type"]
            for row in management(fresh_amqp_url, "exchanges/{vhost}")
            if row["name"].startswith("herald")
        }
        assert exchanges == {ex["name"]: ex["type"] for ex in expected["exchanges"]}
        live_bindings = sorted(
            (
                row["source"],
                row["destination"],
                row["routing_key"],
                sorted(row["arguments"].items()),
            )
            for row in management(fresh_amqp_url, "bindings/{vhost}")
            if row["source"].startswith("herald")
        )
        assert live_bindings == sorted(
            (b["source"], b["destination"], b["routing_key"], sorted(b["arguments"].items()))
            for b in expected["bindings"]
        )
    finally:
        await bus.close()
