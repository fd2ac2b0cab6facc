"""What the API process holds for its lifetime: engine, sessions, bus, settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.jwt_auth import JwksVerifier
from shared.bus import Bus
from shared.db.engine import create_engine, is_sqlite, session_factory
from shared.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    jwks: JwksVerifier | None = None
    # Sessions for read-only requests: no BEGIN/ROLLBACK round trips (see main.py).
    reads: async_sessionmaker[AsyncSession] | None = None

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()


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
    engine = create_engine(url, application_name="herald-api", isolation_level="AUTOCOMMIT")
    transactional = engine.execution_options(isolation_level="READ COMMITTED")
    return engine, session_factory(transactional), session_factory(engine)
