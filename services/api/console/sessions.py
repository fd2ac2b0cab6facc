"""Console sessions held server-side: begun at sign-in, ended at sign-out or on expiry.

The browser's cookie holds the session's own secret, never the API token that began it, so
signing out ends the session for good, and revoking that token ends its sessions too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.state import AppState
from shared.db.schema import ApiToken, ConsoleSession
from shared.ids import new_id
from shared.tokens import SESSION_PREFIX, TOKEN_PREFIX, hash_token, new_secret


async def begin(state: AppState, *, token: str, replacing: str | None = None) -> str | None:
    """Start a session for a live API token's user and return its secret (None: no such token).

    A session the browser still held is ended: every sign-in gets a fresh secret.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = datetime.now(UTC)
    async with state.sessions() as session, session.begin():
        found = (
            await session.execute(
                select(ApiToken.id, ApiToken.user_id).where(
                    ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
                )
            )
        ).first()
        if found is None:
            return None
        if replacing:
            await _end(session, replacing, now)
        secret = new_secret(SESSION_PREFIX)
        session.add(
            ConsoleSession(
                id=new_id("ses"),
                user_id=found.user_id,
                token_id=found.id,
                secret_hash=hash_token(secret),
                created_at=now,
                expires_at=now + timedelta(hours=state.settings.console_session_hours),
            )
        )
    return secret


async def end(state: AppState, secret: str) -> None:
    """End a session: its secret answers 401 from now on, wherever it is presented."""
    async with state.sessions() as session, session.begin():
        await _end(session, secret, datetime.now(UTC))


async def _end(session: AsyncSession, secret: str, now: datetime) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.secret_hash == hash_token(secret), ConsoleSession.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    )
