"""Bearer credentials resolved to a user per request: API tokens, or JWTs when configured."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Sized
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Request
from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.api.abuse import client_address
from services.api.deps import SessionDep, StateDep, app_state
from services.api.jwt_auth import Identity, InvalidJwt, JwksVerifier, looks_like_jwt
from services.api.problems import Problem, too_many_failures
from services.api.state import AppState
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


#: Endpoints that check an API token inside their own statements (`owned_by`), read through
#: `reading_as_caller`: the token is not looked up before they run.
_CHECKED_IN_QUERY: set[Callable[..., Any]] = set()

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
RowsT = TypeVar("RowsT", bound=Sized | None)


def checks_token_in_query(endpoint: Endpoint) -> Endpoint:
    """Mark a hot read that checks an API token in its statements instead of beforehand."""
    _CHECKED_IN_QUERY.add(endpoint)
    return endpoint


async def authenticate(request: Request, session: SessionDep, state: StateDep) -> None:
    """Resolve the bearer credential of a request to its caller, or answer 401.

    Called for every route that `services.api.access` does not list as public; a route finds
    its user in `UserDep` (or its caller in `reading_as_caller`) without asking again.
    """
    token = _bearer(request)
    if getattr(request.scope.get("route"), "endpoint", None) in _CHECKED_IN_QUERY:
        if not token.startswith(SESSION_PREFIX) and not (
            state.jwks is not None and looks_like_jwt(token)
        ):
            # A hot read: the token is checked by its own statements, saving a round trip.
            request.state.caller = Caller(token_hash=hash_token(token))
            return
        # Its own short session: the read runs on a connection of its own, and SQLite
        # would make it wait for a transaction left open beside it.
        async with state.sessions() as own:
            user = await _user_of(own, token, state)
    else:
        user = await _user_of(session, token, state)
    request.state.user = user
    request.state.caller = Caller(user_id=user.id)


async def _user_of(session: AsyncSession, token: str, state: AppState) -> User:
    if state.jwks is not None and looks_like_jwt(token):
        identity = await _jwt_identity(token, state.jwks)
        return await _user_for(session, identity, autoprovision=state.settings.jwt_autoprovision)
    if token.startswith(SESSION_PREFIX):
        return await session_user(session, token)
    found = await session.execute(_BY_TOKEN, {"token_hash": hash_token(token)})
    user = found.scalar_one_or_none()
    if user is None:
        raise _unauthorized("invalid or revoked token")
    return user


async def current_user(request: Request) -> User:
    """The user `authenticate` resolved for this request."""
    user = getattr(request.state, "user", None)
    if not isinstance(user, User):
        # A route that checks its token in its statements has no user loaded: asking for
        # one there is a programming error, not the client's.
        raise RuntimeError(f"no user resolved for {request.url.path}: public or checked in query")
    return user


class Caller:
    """Who a hot read is for: a user already known, or an API token not yet checked.

    A token is checked inside the read's own statements (`owned_by` puts the token look-up
    in their WHERE clause as a subquery on the unique `token_hash`), which saves the round
    trip of a separate look-up on every request and keeps a revoked token refused at once.
    A statement that returned rows has proven the token live (`saw`); a read that proved
    nothing cannot tell an empty result from a refused token, and `reading_as_caller` then
    checks the token alone before answering. Forgetting `saw` costs a query, never a leak.
    """

    __slots__ = ("proven", "token_hash", "user_id")

    def __init__(self, *, user_id: str | None = None, token_hash: str | None = None) -> None:
        self.user_id = user_id
        self.token_hash = token_hash
        self.proven = token_hash is None

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

    def saw(self, rows: RowsT) -> RowsT:
        """Note rows that a statement built with `owned_by` returned: the token is live."""
        if rows:
            self.proven = True
        return rows

    async def settle(self, connection: AsyncConnection) -> None:
        """Answer 401 unless the token is live or already proven so."""
        if self.proven:
            return
        found = await connection.execute(_USER_ID_BY_TOKEN, {"token_hash": self.token_hash})
        if found.first() is None:
            raise _unauthorized("invalid or revoked token")
        self.proven = True


_CALLER_BY_TOKEN = _USER_ID_BY_TOKEN.scalar_subquery()


def owned_by(column: ColumnElement[str], by_token: bool) -> ColumnElement[bool]:
    """`column` is the caller's user id: bound (`user_id`), or the owner of `token_hash`."""
    return column == (_CALLER_BY_TOKEN if by_token else bindparam("user_id"))


async def refusal_of(request: Request) -> Problem | None:
    """The 401 a request's token deserves, when a hot read answers before its statements
    checked it (its parameters refused); None when it is live or already proven."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller) or caller.proven:
        return None
    async with app_state(request).engine.connect() as connection:
        try:
            await caller.settle(connection)
        except Problem as exc:
            return exc
    return None


@contextlib.asynccontextmanager
async def reading_as_caller(request: Request) -> AsyncIterator[tuple[AsyncConnection, Caller]]:
    """A connection for a hot read, and its caller; the caller is settled before it answers,
    whether the read returns or refuses (a 404 to a revoked token must be a 401)."""
    caller = request.state.caller
    assert isinstance(caller, Caller)
    async with app_state(request).engine.connect() as connection:
        try:
            yield connection, caller
        except Problem:
            await caller.settle(connection)
            raise
        await caller.settle(connection)


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
