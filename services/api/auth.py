"""Bearer API tokens resolved to a user per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from services.api.deps import SessionDep
from services.api.problems import Problem
from shared.db.schema import ApiToken, User
from shared.tokens import hash_token


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="herald"'})


async def current_user(request: Request, session: SessionDep) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token")
    user = (
        await session.execute(
            select(User)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == hash_token(token.strip()), ApiToken.revoked_at.is_(None))
        )
    ).scalar_one_or_none()
    if user is None:
        raise _unauthorized("invalid or revoked token")
    return user


UserDep = Annotated[User, Depends(current_user)]
