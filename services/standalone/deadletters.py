"""`herald dlq list --standalone`: the standalone mode's dead letters, from its queue file."""

from __future__ import annotations

import json
from pathlib import Path

from services.deadletters import BY_DEAD_LETTER_QUEUE, DeadLetter
from services.standalone.queuestore import QueueStore, StoredMessage


async def list_standalone_dead_letters(
    path: Path, *, queue: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Describe up to `limit` dead letters of each queue (or of one), leaving them in place.

    `path` must exist: opening the store would otherwise create it.
    """
    names = list(BY_DEAD_LETTER_QUEUE) if queue is None else [_dead_letter_queue(queue)]
    store = QueueStore(path)
    await store.open()
    try:
        found: list[DeadLetter] = []
        for name in names:
            found += [_describe(message) for message in (await store.dead_letters(name))[:limit]]
    finally:
        await store.close()
    return found


def _dead_letter_queue(queue: str) -> str:
    name = queue if queue.endswith(".dlq") else f"{queue}.dlq"
    if name not in BY_DEAD_LETTER_QUEUE:
        known = ", ".join(sorted(BY_DEAD_LETTER_QUEUE))
        raise ValueError(f"unknown dead-letter queue {queue!r}; known: {known}")
    return name


def _describe(message: StoredMessage) -> DeadLetter:
    try:
        body = json.loads(message.body)
    except ValueError:
        body = None
    execution_id = body.get("executionId") if isinstance(body, dict) else None
    return DeadLetter(
        queue=message.queue,
        message_id=message.message_id,
        routing_key=message.routing_key,
        reason=message.dead_reason or "unknown",
        execution_id=execution_id if isinstance(execution_id, str) else None,
        excerpt=message.body[:160].decode(errors="replace"),
    )
