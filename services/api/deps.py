"""Request-scoped dependencies: a database session per request, the app's shared state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.state import AppState


def app_state(request: Request) -> AppState:
    state = request.app.state.herald
    assert isinstance(state, AppState)
    return state


StateDep = Annotated[AppState, Depends(app_state)]


READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def session(request: Request, state: StateDep) -> AsyncIterator[AsyncSession]:
    """A session per request; a read-only request's runs each statement on its own.

    Under READ COMMITTED every statement of a transaction sees its own snapshot anyway, so
    a read needs no transaction: it saves the BEGIN and ROLLBACK round trips.
    """
    factory = state.sessions
    if state.reads is not None and request.method in READ_ONLY_METHODS:
        factory = state.reads
    async with factory() as db_session:
        yield db_session


SessionDep = Annotated[AsyncSession, Depends(session)]
