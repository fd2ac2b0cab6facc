"""Count the SQL statements run in a scope (how many statements a request costs).

A `before_cursor_execute` listener adds one to the counter of the current context, if any;
`counting()` opens such a context. (An execution's `metadata.dbQueries` is counted by the
batch that applies its events, `services.api.batch`, statement by statement.)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass
class Counter:
    statements: int = 0


_CURRENT: contextvars.ContextVar[Counter | None] = contextvars.ContextVar(
    "herald_query_counter", default=None
)


def _count(*_args: Any, **_kwargs: Any) -> None:
    counter = _CURRENT.get()
    if counter is not None:
        counter.statements += 1


def install(engine: Engine) -> None:
    """Count statements run through this engine (idempotent)."""
    if not event.contains(engine, "before_cursor_execute", _count):
        event.listen(engine, "before_cursor_execute", _count)


@contextlib.contextmanager
def counting() -> Iterator[Counter]:
    counter = Counter()
    token = _CURRENT.set(counter)
    try:
        yield counter
    finally:
        _CURRENT.reset(token)
