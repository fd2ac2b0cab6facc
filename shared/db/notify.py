"""Wake-ups after a commit: PostgreSQL LISTEN/NOTIFY, or in-process events on SQLite.

SQLite has no NOTIFY; the standalone mode runs every service in one process, so a commit
that would notify sets the process's own events for that channel instead (`local_wakeup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.event import listens_for
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)

OUTBOX_CHANNEL = "herald_outbox"
JOBS_CHANNEL = "herald_jobs"
# A post scheduled, or put back to scheduled: the scheduler's due-posts loop looks again.
POSTS_CHANNEL = "herald_posts"


_PENDING_KEY = "herald_wakeups"
# Weak: a waiter lives as long as the loop that holds it (an app built per test, say).
_local_waiters: dict[str, weakref.WeakSet[asyncio.Event]] = {}


async def notify(session: AsyncSession, channel: str) -> None:
    """Queue a wake-up in the caller's transaction, delivered only if it commits."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
    else:
        session.sync_session.info.setdefault(_PENDING_KEY, set()).add(channel)


def local_wakeup(channel: str) -> asyncio.Event:
    """Return an event this process sets whenever a transaction notifying `channel` commits."""
    waiter = asyncio.Event()
    _local_waiters.setdefault(channel, weakref.WeakSet()).add(waiter)
    return waiter


@listens_for(Session, "after_commit")
def _wake_local_waiters(session: Session) -> None:
    for channel in session.info.pop(_PENDING_KEY, ()):
        for waiter in list(_local_waiters.get(channel, ())):
            waiter.set()


@listens_for(Session, "after_rollback")
def _forget_wakeups(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


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
