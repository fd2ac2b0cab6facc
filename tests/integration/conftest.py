"""Integration fixtures: engines on the test database, a started bus on the test vhost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import AmqpBus
from shared.db.engine import create_engine, session_factory


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, application_name="herald-tests")
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
async def own_sessions(fresh_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database no other test writes to."""
    engine = create_engine(fresh_database_url, application_name="herald-tests")
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def bus(fresh_amqp_url: str) -> AsyncIterator[AmqpBus]:
    bus = AmqpBus(fresh_amqp_url, service="tests", prefetch=8, delivery_limit=3)
    await bus.start()
    yield bus
    await bus.close(grace=2)
