"""Prometheus metrics shared by every service (`herald_` prefix, base units, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_PUBLISHED = Counter(
    "herald_messages_published_total", "Events published to the broker.", ["routing_key"]
)
MESSAGES_DELAYED = Counter(
    "herald_messages_delayed_total", "Messages sent through the retry delay ladder.", ["step"]
)
MESSAGES_CONSUMED = Counter(
    "herald_messages_consumed_total", "Messages handled, by outcome.", ["queue", "outcome"]
)
MESSAGES_DEAD_LETTERED = Counter(
    "herald_messages_dead_lettered_total",
    "Messages rejected to a dead-letter queue.",
    ["queue", "reason"],
)
OUTBOX_PUBLISHED = Counter("herald_outbox_published_total", "Outbox rows relayed to the broker.")
OUTBOX_PENDING = Gauge(
    "herald_outbox_pending", "Outbox rows not yet published, as last seen by the relay."
)
OUTBOX_RELAY_SECONDS = Histogram(
    "herald_outbox_relay_batch_seconds", "Time to relay one outbox batch with confirms."
)
EVENTS_DUPLICATE = Counter(
    "herald_events_duplicate_total",
    "Events dropped because their id was already processed.",
    ["consumer"],
)
SERVICE_READY = Gauge("herald_service_ready", "1 when the process reports ready.", ["service"])
