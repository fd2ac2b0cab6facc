"""Engines and sessions from a database URL, PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession  # re-export


def async_url(url: str) -> str:
    """Return the async-driver form of a database URL (`postgresql://` -> asyncpg)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise ValueError(f"database URL must be postgresql:// or sqlite://, got {backend!r}")


# How long a transaction waits for SQLite's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    application_name: str = "herald",
    server_settings: dict[str, str] | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """Create an async engine; PostgreSQL connections carry the service's name (and any
    other `server_settings`, run-time parameters of each connection's session)."""
    if is_sqlite(url):
        engine = create_async_engine(async_url(url), **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own implicit BEGIN would start transactions deferred; see below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            # SQLite has no row locks (no FOR UPDATE, no SKIP LOCKED): every transaction takes
            # the database's write lock when it begins, so the claims and compare-and-set
            # updates written for PostgreSQL serialise instead of failing half-way with
            # SQLITE_BUSY when a deferred reader later tries to write.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_async_engine(
        async_url(url),
        connect_args={
            "server_settings": {"application_name": application_name, **(server_settings or {})}
        },
        **kwargs,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# The driver's errors for a connection that is gone or refused (08xxx), or a server that is
# starting up or shutting down (57P01, 57P03): not the statement's fault.
_DRIVER_DISCONNECTS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
)


def is_disconnect(exc: BaseException) -> bool:
    """Tell whether an error means the database could not be reached, not that a query failed.

    Looks down the chain of causes: SQLAlchemy wraps the driver's errors, and a refused
    connection surfaces as the bare `OSError` asyncpg raised.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError | TimeoutError | sa_exc.TimeoutError):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, _DRIVER_DISCONNECTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
