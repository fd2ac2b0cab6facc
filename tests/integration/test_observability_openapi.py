"""The API's OpenAPI document is a valid OpenAPI document (openapi-spec-validator)."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from services.api.main import create_app
from shared.settings import Settings


def test_openapi_document_is_valid(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        local_repos_root=str(tmp_path),
    )
    document = create_app(settings).openapi()
    assert document["paths"], "no operations"
    validate(document)  # raises OpenAPIValidationError naming the offending path
