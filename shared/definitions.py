"""The topology as a RabbitMQ definitions document, loadable at broker start.

Built from `shared.topology`, the same declarations the services make at run time, so the
file in `deploy/rabbitmq/definitions.json` cannot drift from them (a test compares both the
file and a live broker's view with this).
"""

from __future__ import annotations

import json
from typing import Any

from shared import topology

DEFAULT_DELIVERY_LIMIT = 5


def definitions(
    *, vhost: str = "/", delivery_limit: int = DEFAULT_DELIVERY_LIMIT
) -> dict[str, Any]:
    """Return the exchanges, queues and bindings of herald's topology for one vhost."""
    exchanges = [
        _exchange(vhost, topology.EXCHANGE, "topic"),
        _exchange(vhost, topology.DEAD_LETTER_EXCHANGE, "direct"),
        _exchange(vhost, topology.RETRY_EXCHANGE, "headers"),
    ]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for work in topology.WORK_QUEUES:
        queues.append(
            _queue(
                vhost, work.name, topology.work_queue_arguments(work, delivery_limit=delivery_limit)
            )
        )
        queues.append(_queue(vhost, work.dead_letter_queue, topology.dead_letter_queue_arguments()))
        bindings += [
            _binding(vhost, topology.EXCHANGE, work.name, key, {}) for key in work.routing_keys
        ]
        bindings.append(
            _binding(
                vhost,
                topology.RETRY_EXCHANGE,
                work.name,
                "",
                topology.retry_binding_arguments(work),
            )
        )
        bindings.append(
            _binding(
                vhost,
                topology.DEAD_LETTER_EXCHANGE,
                work.dead_letter_queue,
                work.dead_letter_queue,
                {},
            )
        )
    for step in topology.DELAY_LADDER:
        queues.append(_queue(vhost, step.name, topology.delay_queue_arguments(step)))
    return {
        "rabbit_version": "3.13.0",
        "vhosts": [{"name": vhost}],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }


def _exchange(vhost: str, name: str, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }


def _queue(vhost: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": arguments,
    }


def _binding(
    vhost: str, source: str, queue: str, key: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": arguments,
    }


def render() -> str:
    return json.dumps(definitions(), indent=2) + "\n"
