"""PostgreSQL LISTEN/NOTIFY wake-ups (the embedded SQLite mode wakes in-process instead)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger(__name__)

OUTBOX_CHANNEL = "herald_outbox"
JOBS_CHANNEL = "herald_jobs"


async def notify(session: AsyncSession, channel: str) -> None:
    """Queue a NOTIFY in the caller's transaction; PostgreSQL delivers it on commit."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Hold one connection LISTENing on some channels; set an asyncio.Event per channel.

    On connection loss it reconnects with a pause, setting every event once so waiters
    re-read the database (a notification may have been missed while away).
    """

    def __init__(self, url: str, channels: list[str]) -> None:
        self._dsn = plain_dsn(url)
        self.events = {channel: asyncio.Event() for channel in channels}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                for channel in self.events:
                    await connection.add_listener(channel, self._on_notify)
                self._wake_all()
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify listener disconnected", error=str(exc))
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            self._wake_all()
            await asyncio.sleep(1.0)

    def _on_notify(self, _connection: Any, _pid: int, channel: str, _payload: str) -> None:
        event = self.events.get(channel)
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        for event in self.events.values():
            event.set()
