"""The database the operator's commands work on: DATABASE_URL, PostgreSQL or SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.engine import create_engine, session_factory
from shared.settings import get_settings

T = TypeVar("T")


def in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a session on DATABASE_URL, the engine closed afterwards."""

    async def go() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            async with session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())
