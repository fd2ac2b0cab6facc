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


async def session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as db_session:
        yield db_session


SessionDep = Annotated[AsyncSession, Depends(session)]
