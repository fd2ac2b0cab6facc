"""Fuzz the API from its own OpenAPI document (schemathesis): no 5xx, responses as declared."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_openapi_document_declares_operations_tags_and_security(api_server: str) -> None:
    document = httpx.get(f"{api_server}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert all(operation.get("operationId") for operation in operations)
    api_operations = [op for op in operations if op["operationId"][0].islower()]
    assert all(op.get("tags") for op in api_operations)
    assert all("422" in op["responses"] for op in api_operations)


def test_fuzzing_every_operation_finds_no_5xx_and_no_undeclared_response(
    api_server: str, api_headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server}/openapi.json")
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
            case.call_and_validate(base_url=api_server, headers=api_headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation at once
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
