"""What the API process holds for its lifetime: engine, sessions, bus, settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.abuse import FailedAuthentication
from services.api.jwt_auth import JwksVerifier
from shared.budgets import Budgets
from shared.bus import Bus
from shared.db.engine import create_engine, is_sqlite, session_factory
from shared.settings import Settings

# PostgreSQL connections per api process (requests, the event consumer and the relay share them).
API_POOL_SIZE = 20
# Seconds a pooled connection may rest and still be handed out without a ping.
PING_AFTER_REST = 1.0


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    jwks: JwksVerifier | None = None
    # Sessions for read-only requests: no BEGIN/ROLLBACK round trips (see main.py).
    reads: async_sessionmaker[AsyncSession] | None = None
    budgets: Budgets = field(default_factory=Budgets)
    failed_auth: FailedAuthentication = field(
        default_factory=lambda: FailedAuthentication(Budgets(), per_minute=0)
    )

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()
        await self.budgets.close()


def open_database(
    url: str,
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession] | None]:
    """The engine, transactional sessions, and (PostgreSQL) sessions for read-only requests.

    On PostgreSQL, pooled connections rest in autocommit: the pool's pre-ping is then one
    round trip (not BEGIN, ping, ROLLBACK) and a read-only request sends no BEGIN or
    ROLLBACK. Transactional sessions ask for READ COMMITTED (PostgreSQL's default, what
    every writer here was written for) when they check a connection out.
    """
    if is_sqlite(url):
        engine = create_engine(url, application_name="herald-api")
        return engine, session_factory(engine), None
    # A fixed pool, no overflow: an overflow connection is closed when it comes back to a
    # full pool, so a burst of requests would open (and re-prepare statements on) fresh
    # connections over and over; a request waiting briefly for a pooled one costs less.
    engine = create_engine(
        url,
        application_name="herald-api",
        isolation_level="AUTOCOMMIT",
        pool_size=API_POOL_SIZE,
        max_overflow=0,
        pool_pre_ping=False,  # `_ping_rested` instead
        # The API's statements are prepared once per connection and each reads an index by
        # bound keys (user, job, cursor). Left to choose, PostgreSQL planned them afresh on
        # every run (a bound LIMIT made the generic plan look dearer); planning cost as much
        # as running them (0.12-0.19 ms of server time per statement, measured on the
        # executions page and the statistics), for the same index plans.
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )
    _ping_rested(engine)
    transactional = engine.execution_options(isolation_level="READ COMMITTED")
    return engine, session_factory(transactional), session_factory(engine)


def _ping_rested(engine: AsyncEngine) -> None:
    """Ping a pooled connection at checkout only when it rested `PING_AFTER_REST` or longer.

    A ping is a round trip, which costs a hot read about as much as one of its statements; a
    connection back from a request a moment ago is known good. One that rested longer is
    pinged as the pool's pre-ping would, and replaced when the ping fails (a database
    restart or a cut connection), so a request never gets a dead connection.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkin")
    def _rest(_dbapi_connection: Any, record: Any) -> None:
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested_at = record.info.get("rested_at")
        if rested_at is not None and time.monotonic() - rested_at < PING_AFTER_REST:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc
