"""The demo's API token: one valid at a time, shown again at every start.

Tokens are stored hashed, so the database cannot give a token back. The demo's is kept in
plain text in a file beside the data instead, readable by its owner alone (0600): whoever can
read that directory can read the data itself (the SQLite file, or in the distributed mode a
demo on loopback), so the file exposes nothing more, and a restart shows the token the user
already saved, with their console session still signed in. When the file is missing or its
token no longer valid (revoked, another database), a new token is issued and every other
token of the demo user revoked: whatever happens to the file, one demo token is valid.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import ApiToken
from shared.tokens import TOKEN_PREFIX, hash_token, issue_token

log = structlog.get_logger(__name__)


async def demo_token(session: AsyncSession, *, user_id: str, path: Path, name: str) -> str:
    """The token stored at `path` if it is still the demo user's; else a new one, stored there."""
    stored = _read(path)
    if stored is not None and await _valid(session, user_id=user_id, token=stored):
        return stored
    await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    token = await issue_token(session, user_id=user_id, name=name)
    _write(path, token)
    return token


async def _valid(session: AsyncSession, *, user_id: str, token: str) -> bool:
    found = await session.scalar(
        select(ApiToken.id).where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
        )
    )
    return found is not None


def _read(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text if text.startswith(TOKEN_PREFIX) else None


def _write(path: Path, token: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            os.fchmod(file.fileno(), 0o600)  # a file left by an older start may be wider
            file.write(token + "\n")
    except OSError as exc:
        # Not fatal: this start still prints the token; the next one issues another.
        log.warning("demo token not kept", path=str(path), error=str(exc))
