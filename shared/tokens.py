"""API tokens and console session secrets: issued once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import ApiToken
from shared.ids import new_id

TOKEN_PREFIX = "hrld_"  # noqa: S105 - a label, not a secret
SESSION_PREFIX = "hrls_"  # a console session's secret, never an API token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


async def issue_token(session: AsyncSession, *, user_id: str, name: str = "") -> str:
    """Create a token for a user and return it; only its digest is kept."""
    return (await create_token(session, user_id=user_id, name=name))[1]


async def create_token(
    session: AsyncSession, *, user_id: str, name: str = ""
) -> tuple[ApiToken, str]:
    """Create a token for a user: its record and its secret (shown once, never stored)."""
    token = new_secret(TOKEN_PREFIX)
    record = ApiToken(
        id=new_id("tok"),
        user_id=user_id,
        name=name,
        token_hash=hash_token(token),
        prefix=token[:12],
        created_at=datetime.now(UTC),
    )
    session.add(record)
    return record, token
