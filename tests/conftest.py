"""Fixtures shared by every test tier: isolated databases and vhosts on real servers, and
the six services as real processes on them (`stack`, for the e2e and browser tiers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.db.migrate import upgrade
from shared.secrets import generate_key
from tests.support import processes, servers
from tests.support.fakes.resend import FakeResend
from tests.support.repositories import make_repository


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A freshly migrated PostgreSQL database of this test process's own."""
    base = servers.base_database_url()
    name = servers.unique_name("herald_t")
    url = asyncio.run(servers.create_database(base, name))
    upgrade(url)
    yield url
    asyncio.run(servers.drop_database(base, name))


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A migrated database that nothing stays connected to, to copy per test."""
    base = servers.base_database_url()
    name = servers.unique_name("herald_tpl")
    upgrade(asyncio.run(servers.create_database(base, name)))
    yield name
    asyncio.run(servers.drop_database(base, name))


@pytest.fixture
async def fresh_database_url(template_database: str) -> AsyncIterator[str]:
    """A database of one test's own, for tests that look at every row (a scheduler's claim)."""
    base = servers.base_database_url()
    name = servers.unique_name("herald_t")
    url = await servers.create_database(base, name, template=template_database)
    yield url
    await servers.drop_database(base, name)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test process's own, deleted afterwards."""
    base = servers.base_amqp_url()
    vhost = servers.unique_name("herald-t")
    url = servers.create_vhost(base, vhost)
    yield url
    servers.delete_vhost(base, vhost)


@pytest.fixture
async def fresh_amqp_url() -> AsyncIterator[str]:
    """A vhost for one test, for tests that inspect queue contents."""
    base = servers.base_amqp_url()
    vhost = servers.unique_name("herald-t")
    url = servers.create_vhost(base, vhost)
    yield url
    servers.delete_vhost(base, vhost)


@pytest.fixture
async def redis_budgets() -> AsyncIterator[tuple[str, str]]:
    """A Redis URL and a key prefix of one test's own; its keys are deleted afterwards."""
    url = servers.base_redis_url()
    prefix = servers.unique_name("herald-t")
    yield url, prefix
    await servers.delete_redis_keys(url, prefix)


@pytest.fixture
def resend() -> Iterator[FakeResend]:
    """A local server speaking Resend's API, where the stack's notifier sends email."""
    with FakeResend() as server:
        yield server


@pytest.fixture
def stack(
    fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path, resend: FakeResend
) -> Iterator[dict[str, processes.Service]]:
    repos = tmp_path / "repos"
    make_repository(repos)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "DATABASE_URL": fresh_database_url,
        "AMQP_URL": fresh_amqp_url,
        "HERALD_LOCAL_REPOS_ROOT": str(repos),
        "HERALD_SCHEDULER_MAX_SLEEP": "5",
        "HERALD_RESEND_API_KEY": resend.api_key,
        "HERALD_RESEND_API_URL": resend.url,
        # Asking an alert address to confirm seals the link in the event.
        "HERALD_SECRET_KEY": generate_key(),
    }
    with processes.running(processes.SERVICES, env, logs) as services:
        yield services
