"""Where the in-process bus keeps its messages until they are acked: a small SQLite file.

A message is written before `publish` returns (a publisher confirm) and deleted when its
handler returns (the ack), so a process stopped or killed mid-work finds every unacked
message again when it starts: at-least-once, as with durable queues. Dead letters stay in
the file, with their reason, until someone removes them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiosqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL,
    message_id TEXT,
    not_before TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    dead_reason TEXT,
    traceparent TEXT
)
"""
# A file written before messages kept their trace context gets the column (SQLite adds a
# nullable column in place).
_ADD_TRACEPARENT = "ALTER TABLE bus_messages ADD COLUMN traceparent TEXT"
_COLUMNS = (
    "id, queue, routing_key, body, message_id, not_before, deliveries, dead_reason, traceparent"
)


@dataclass
class StoredMessage:
    queue: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    not_before: datetime | None = None
    deliveries: int = 0
    dead_reason: str | None = None
    id: int = 0
    #: The W3C trace context of the span that sent it (tracing on), continued by its handler.
    traceparent: str | None = None


class QueueStore:
    """The messages of every in-process queue; `path=None` keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # One writer at a time, so a commit never covers half of another caller's change.
        self._lock = asyncio.Lock()

    async def open(self) -> list[StoredMessage]:
        """Open (or create) the store; return the messages still to deliver, oldest first."""
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(str(self._path) if self._path else ":memory:")
        await self._db.execute("PRAGMA journal_mode=WAL")
        # A commit survives the process being killed (the OS keeps the WAL); only a power
        # cut may lose the latest ones, as with RabbitMQ's default fsync batching.
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute(_SCHEMA)
        async with self._db.execute("PRAGMA table_info(bus_messages)") as cursor:
            columns = {row[1] for row in await cursor.fetchall()}
        if "traceparent" not in columns:
            await self._db.execute(_ADD_TRACEPARENT)
        await self._db.commit()
        return await self.pending()

    async def pending(self) -> list[StoredMessage]:
        """The messages not acked yet (queued, in a handler, or waiting for their time)."""
        return await self._select("dead_reason IS NULL")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def add(self, messages: list[StoredMessage]) -> None:
        """Store messages (setting their ids) durably before returning."""
        db = self._connection()
        async with self._lock:
            for message in messages:
                cursor = await db.execute(
                    "INSERT INTO bus_messages (queue, routing_key, body, message_id, not_before,"
                    " deliveries, traceparent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.queue,
                        message.routing_key,
                        message.body,
                        message.message_id,
                        message.not_before.isoformat() if message.not_before else None,
                        message.deliveries,
                        message.traceparent,
                    ),
                )
                message.id = cursor.lastrowid or 0
            await db.commit()

    async def remove(self, message: StoredMessage) -> None:
        """Forget an acked message."""
        await self._write("DELETE FROM bus_messages WHERE id = ?", (message.id,))

    async def count_delivery(self, message: StoredMessage) -> None:
        await self._write(
            "UPDATE bus_messages SET deliveries = ? WHERE id = ?", (message.deliveries, message.id)
        )

    async def dead_letter(
        self, message: StoredMessage, dead_letter_queue: str, reason: str
    ) -> None:
        """Move a message to a dead-letter queue, keeping it with its reason."""
        message.queue, message.dead_reason = dead_letter_queue, reason
        await self._write(
            "UPDATE bus_messages SET queue = ?, dead_reason = ? WHERE id = ?",
            (dead_letter_queue, reason, message.id),
        )

    async def dead_letters(self, queue: str | None = None) -> list[StoredMessage]:
        """The dead letters (of one dead-letter queue, or all), oldest first."""
        if queue is None:
            return await self._select("dead_reason IS NOT NULL")
        return await self._select("dead_reason IS NOT NULL AND queue = ?", (queue,))

    async def _write(self, sql: str, parameters: tuple[object, ...]) -> None:
        db = self._connection()
        async with self._lock:
            await db.execute(sql, parameters)
            await db.commit()

    async def _select(self, where: str, parameters: tuple[object, ...] = ()) -> list[StoredMessage]:
        db = self._connection()
        async with db.execute(
            f"SELECT {_COLUMNS} FROM bus_messages WHERE {where} ORDER BY id",  # noqa: S608
            parameters,
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            StoredMessage(
                id=row[0],
                queue=row[1],
                routing_key=row[2],
                body=bytes(row[3]),
                message_id=row[4],
                not_before=datetime.fromisoformat(row[5]) if row[5] else None,
                deliveries=row[6],
                dead_reason=row[7],
                traceparent=row[8],
            )
            for row in rows
        ]

    def _connection(self) -> aiosqlite.Connection:
        assert self._db is not None, "queue store not open"
        return self._db
