"""Integration fixtures: engines on the test database, a started bus on the test vhost.

The scheduler's and the API's tests run on both databases herald supports: PostgreSQL (the
distributed mode) and SQLite (the standalone mode), through one `database_backend` parameter
behind `database_url` and `fresh_database_url`. A test that needs a PostgreSQL server itself
(a network outage of it, say) is marked `postgresql_only` with the reason, and runs once.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.main import create_app
from shared.bus import AmqpBus
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import upgrade
from shared.ids import new_id
from shared.secrets import generate_key
from shared.settings import Settings
from tests.support import factories, processes, servers
from tests.support.api import api_client

BACKENDS = ("postgresql", "sqlite")
# Test modules whose database code runs in both modes.
ON_BOTH_DATABASES = ("test_scheduler_", "test_api_", "test_cli_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgresql_only(reason): runs on PostgreSQL alone (the reason says why not on SQLite)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_backend" not in metafunc.fixturenames:
        return
    if not metafunc.module.__name__.rsplit(".", 1)[-1].startswith(ON_BOTH_DATABASES):
        return
    marker = metafunc.definition.get_closest_marker("postgresql_only")
    if marker is not None:
        assert marker.kwargs.get("reason") or marker.args, "postgresql_only needs a reason"
    backends = ("postgresql",) if marker is not None else BACKENDS
    metafunc.parametrize("database_backend", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "postgresql"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file to copy per test (migrating each time costs more than copying)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def database_url(
    database_url: str,
    database_backend: str,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The session's shared database on the backend under test."""
    if database_backend == "postgresql":
        yield database_url
        return
    path = tmp_path_factory.mktemp("sqlite") / "shared.db"
    shutil.copyfile(sqlite_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def fresh_database_url(
    database_backend: str, sqlite_template: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A database of one test's own on the backend under test."""
    if database_backend == "sqlite":
        path = tmp_path / f"{new_id('db')}.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    # The PostgreSQL template is asked for only here, so a SQLite run needs no server.
    template = str(request.getfixturevalue("template_database"))
    base = servers.base_database_url()
    name = servers.unique_name("herald_t")
    yield asyncio.run(servers.create_database(base, name, template=template))
    asyncio.run(servers.drop_database(base, name))


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


@pytest.fixture
def api_settings(database_url: str, fresh_amqp_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings of an API app on the test database and a vhost of the test's own."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "amqp_url": fresh_amqp_url,
            "local_repos_root": str(tmp_path),
            "secret_key": generate_key(),
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
async def api(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """The API app in process on the test database, with a small body limit to test it."""
    async for client in api_client(api_settings(api_max_body_bytes=64 * 1024)):
        yield client


@pytest.fixture(scope="module")
def api_server(
    database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API on a real port (keep-alive connections and all), in a thread with its own loop."""
    app_settings = Settings(
        database_url=database_url,
        amqp_url=amqp_url,
        local_repos_root=str(tmp_path_factory.mktemp("repos")),
        api_max_body_bytes=64 * 1024,
    )
    port = processes.free_port()
    config = uvicorn.Config(
        create_app(app_settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture(scope="module")
def api_headers(api_server: str, database_url: str) -> dict[str, str]:
    """A user's bearer token, with a project and a job, so some generated ids hit real rows."""

    async def seed() -> str:
        engine = create_engine(database_url, application_name="herald-tests")
        try:
            sessions = session_factory(engine)
            user_id, token = await factories.user_with_token(sessions)
            project = await factories.project(sessions, user_id)
            await factories.job(sessions, project, next_run_at=None)
            return token
        finally:
            await engine.dispose()

    return {"Authorization": f"Bearer {asyncio.run(seed())}"}
