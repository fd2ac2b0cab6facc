"""Fuzz the API from its own OpenAPI document (schemathesis): no 5xx, responses as declared."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.main import create_app
from shared.settings import Settings
from tests.support import factories

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(database_url: str, amqp_url: str, tmp_path_factory: Any) -> Iterator[str]:
    """The API on a real port, in a thread with its own event loop."""
    app_settings = Settings(
        database_url=database_url,
        amqp_url=amqp_url,
        local_repos_root=str(tmp_path_factory.mktemp("repos")),
        api_max_body_bytes=64 * 1024,
    )
    port = _free_port()
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
def auth(served: str, database_url: str) -> dict[str, str]:
    """A user with a token, a project and a job, so some generated ids hit real rows."""
    from shared.db.engine import create_engine, session_factory

    async def seed() -> str:
        engine = create_engine(database_url, application_name="herald-fuzz")
        try:
            sessions = session_factory(engine)
            user_id, token = await factories.user_with_token(sessions)
            project = await factories.project(sessions, user_id)
            await factories.job(sessions, project, next_run_at=None)
            return token
        finally:
            await engine.dispose()

    return {"Authorization": f"Bearer {asyncio.run(seed())}"}


def test_the_openapi_document_declares_operations_tags_and_security(served: str) -> None:
    document = httpx.get(f"{served}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert all(operation.get("operationId") for operation in operations)
    api_operations = [op for op in operations if op["operationId"][0].islower()]
    assert all(op.get("tags") for op in api_operations)
    assert all("422" in op["responses"] for op in api_operations)


def test_fuzzing_every_operation_finds_no_5xx_and_no_undeclared_response(
    served: str, auth: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=served, headers=auth, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation at once
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
