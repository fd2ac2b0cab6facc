"""Bearer credentials resolved to a user per request: API tokens, or JWTs when configured."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Depends, Request
from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.api.abuse import client_address
from services.api.deps import SessionDep, StateDep, app_state
from services.api.jwt_auth import Identity, InvalidJwt, JwksVerifier, looks_like_jwt
from services.api.problems import Problem, too_many_failures
from shared.db.schema import ApiToken, ConsoleSession, User
from shared.ids import new_id
from shared.tokens import SESSION_PREFIX, hash_token

log = structlog.get_logger(__name__)


# Built once: only the digest changes. One indexed read (the unique token_hash, then the
# user's primary key) per request, so a revoked token stops working at once.
_TOKENS = ApiToken.__table__.c
_LIVE_TOKEN = (_TOKENS.token_hash == bindparam("token_hash"), _TOKENS.revoked_at.is_(None))
_BY_TOKEN = select(User).join(ApiToken, ApiToken.user_id == User.id).where(*_LIVE_TOKEN)
_USER_ID_BY_TOKEN = select(_TOKENS.user_id).where(*_LIVE_TOKEN)
# A console session: live, unexpired, and begun with a token that is still live.
_BY_SESSION = (
    select(User)
    .join(ConsoleSession, ConsoleSession.user_id == User.id)
    .join(ApiToken, ApiToken.id == ConsoleSession.token_id)
    .where(
        ConsoleSession.secret_hash == bindparam("secret_hash"),
        ConsoleSession.revoked_at.is_(None),
        ConsoleSession.expires_at > bindparam("now"),
        ApiToken.revoked_at.is_(None),
    )
)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="herald"'})


def _bearer(request: Request) -> str:
    # An address refused for failing too often is refused before its credential is read.
    wait = app_state(request).failed_auth.refused_for(client_address(request))
    if wait is not None:
        raise too_many_failures(wait)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer token")
    return token


async def _jwt_identity(token: str, jwks: JwksVerifier) -> Identity:
    try:
        return await jwks.verify(token)
    except InvalidJwt as exc:
        log.info("JWT refused", reason=str(exc))
        raise _unauthorized("invalid token") from None


async def session_user(session: AsyncSession, secret: str) -> User:
    """The user of a live console session, or 401."""
    params = {"secret_hash": hash_token(secret), "now": datetime.now(UTC)}
    user = (await session.execute(_BY_SESSION, params)).scalar_one_or_none()
    if user is None:
        raise _unauthorized("invalid, expired or ended session")
    return user


async def current_user(request: Request, session: SessionDep, state: StateDep) -> User:
    token = _bearer(request)
    if state.jwks is not None and looks_like_jwt(token):
        identity = await _jwt_identity(token, state.jwks)
        return await _user_for(session, identity, autoprovision=state.settings.jwt_autoprovision)
    if token.startswith(SESSION_PREFIX):
        return await session_user(session, token)
    user = (
        await session.execute(_BY_TOKEN, {"token_hash": hash_token(token)})
    ).scalar_one_or_none()
    if user is None:
        raise _unauthorized("invalid or revoked token")
    return user


@dataclass(frozen=True)
class Caller:
    """Who a hot read is for: a user already known (a JWT's), or an API token not yet checked.

    A token is checked inside the read's own statements (`owned_by` puts the token look-up
    in their WHERE clause as a subquery on the unique `token_hash`), which saves the round
    trip of a separate look-up on every request and keeps a revoked token refused at once.
    A read that comes back empty cannot tell an empty result from a refused token:
    `confirm` then checks the token alone.
    """

    user_id: str | None = None
    token_hash: str | None = None

    @property
    def by_token(self) -> bool:
        return self.token_hash is not None

    @property
    def params(self) -> dict[str, str]:
        """The bound parameters of a statement built with `owned_by(..., self.by_token)`."""
        if self.token_hash is not None:
            return {"token_hash": self.token_hash}
        assert self.user_id is not None
        return {"user_id": self.user_id}

    async def confirm(self, connection: AsyncConnection) -> None:
        """Answer 401 unless the token is live (a user already known needs no check)."""
        if self.token_hash is None:
            return
        found = await connection.execute(_USER_ID_BY_TOKEN, {"token_hash": self.token_hash})
        if found.first() is None:
            raise _unauthorized("invalid or revoked token")


_CALLER_BY_TOKEN = _USER_ID_BY_TOKEN.scalar_subquery()


def owned_by(column: ColumnElement[str], by_token: bool) -> ColumnElement[bool]:
    """`column` is the caller's user id: bound (`user_id`), or the owner of `token_hash`."""
    return column == (_CALLER_BY_TOKEN if by_token else bindparam("user_id"))


async def hot_caller(request: Request) -> Caller:
    """The caller of a hot read, with no database round trip for an API token."""
    token = _bearer(request)
    state = app_state(request)
    if state.jwks is not None and looks_like_jwt(token):
        identity = await _jwt_identity(token, state.jwks)
        # A JWT may provision its user, which writes: that takes a session of its own.
        async with state.sessions() as session:
            user = await _user_for(
                session, identity, autoprovision=state.settings.jwt_autoprovision
            )
            return Caller(user_id=user.id)
    if token.startswith(SESSION_PREFIX):
        # The console's reads: one look-up of the session, then the user's id is bound.
        async with state.sessions() as session:
            return Caller(user_id=(await session_user(session, token)).id)
    return Caller(token_hash=hash_token(token))


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
