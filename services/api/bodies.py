"""The base of every request body: camelCase, unknown fields refused, no NUL bytes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel


def _without_nul(value: Any) -> Any:
    """Refuse NUL bytes anywhere in a string: PostgreSQL cannot store them in text."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("NUL bytes are not allowed")
    if isinstance(value, list):
        for item in value:
            _without_nul(item)
    return value


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _without_nul(value)
