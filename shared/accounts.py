"""Users and their tokens, as the CLI and the demo seed create them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import User
from shared.ids import new_id
from shared.scheduling import validate_timezone


async def ensure_user(
    session: AsyncSession, *, email: str, name: str = "", timezone: str = "UTC"
) -> User:
    """Return the user with this email, creating it if needed."""
    validate_timezone(timezone)
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        user = User(
            id=new_id("usr"),
            email=email.lower(),
            name=name,
            timezone=timezone,
            created_at=datetime.now(UTC),
        )
        session.add(user)
        await session.flush()
    return user
