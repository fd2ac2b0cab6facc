"""Count the SQL statements run in a scope, through SQLAlchemy: one way for every count.

A `before_cursor_execute` listener counts each statement run through an engine it is
installed on: in the current `counting()` context (how many statements a request costs),
and, inside `tallying()`, once for each execution the statement runs `on_behalf_of`
(an execution's `metadata.dbQueries`, counted by the batch that applies its events).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
from collections.abc import Iterable, Iterator
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
_TALLY: contextvars.ContextVar[collections.Counter[str] | None] = contextvars.ContextVar(
    "herald_query_tally", default=None
)
_BEHALF: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "herald_query_behalf", default=frozenset()
)


def _count(*_args: Any, **_kwargs: Any) -> None:
    counter = _CURRENT.get()
    if counter is not None:
        counter.statements += 1
    tally = _TALLY.get()
    if tally is not None:
        tally.update(_BEHALF.get())


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


@contextlib.contextmanager
def tallying() -> Iterator[collections.Counter[str]]:
    """Per execution id, the statements run on its behalf inside this scope."""
    tally: collections.Counter[str] = collections.Counter()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


@contextlib.contextmanager
def on_behalf_of(execution_ids: Iterable[str]) -> Iterator[None]:
    """Statements run inside count once for each of `execution_ids` (in a `tallying()`)."""
    token = _BEHALF.set(frozenset(execution_ids))
    try:
        yield
    finally:
        _BEHALF.reset(token)
