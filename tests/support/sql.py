"""Plain SQL against a test's database, for what a test must see or set behind the API."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from shared.db.engine import create_engine


async def query_async(
    database_url: str, sql: str, params: dict[str, Any] | None = None
) -> list[Any]:
    """Run one statement in its own transaction; return its rows (none for a write)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


def query(database_url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    """`query_async` from synchronous code (the e2e tests drive processes synchronously)."""
    return asyncio.run(query_async(database_url, sql, params))
