"""Bearer credentials resolved to a user per request: API tokens, or JWTs when configured."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Depends, Request
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import SessionDep, StateDep
from services.api.jwt_auth import Identity, InvalidJwt, looks_like_jwt
from services.api.problems import Problem
from shared.db.schema import ApiToken, User
from shared.ids import new_id
from shared.tokens import hash_token

log = structlog.get_logger(__name__)


_BY_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="herald"'})


async def current_user(request: Request, session: SessionDep, state: StateDep) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer token")
    if state.jwks is not None and looks_like_jwt(token):
        try:
            identity = await state.jwks.verify(token)
        except InvalidJwt as exc:
            log.info("JWT refused", reason=str(exc))
            raise _unauthorized("invalid token") from None
        return await _user_for(session, identity, autoprovision=state.settings.jwt_autoprovision)
    # One indexed read (the unique token_hash, then the user's primary key) per request,
    # so a revoked token stops working at once. Built once: only the digest changes.
    user = (
        await session.execute(_BY_TOKEN, {"token_hash": hash_token(token)})
    ).scalar_one_or_none()
    if user is None:
        raise _unauthorized("invalid or revoked token")
    return user


async def _user_for(session: AsyncSession, identity: Identity, *, autoprovision: bool) -> User:
    """Map a JWT's `sub` to its user; create one on first use only when allowed."""
    statement = select(User).where(User.external_subject == identity.subject)
    user = await session.scalar(statement)
    if user is not None:
        return user
    if not autoprovision:
        raise _unauthorized("no user for this subject")
    email = (identity.email or "").lower()
    if not email or await session.scalar(select(User.id).where(User.email == email)):
        # An email already taken is not proof of identity: a placeholder keeps them apart.
        digest = hashlib.sha256(identity.subject.encode()).hexdigest()[:24]
        email = f"{digest}@subjects.herald.invalid"
    user = User(
        id=new_id("usr"),
        email=email,
        name=(identity.name or "")[:200],
        timezone="UTC",
        external_subject=identity.subject,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # Another request provisioned the same subject first.
        await session.rollback()
        user = await session.scalar(statement)
        if user is None:
            raise _unauthorized("no user for this subject") from None
    return user


UserDep = Annotated[User, Depends(current_user)]
