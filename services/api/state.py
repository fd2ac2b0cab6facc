"""What the API process holds for its lifetime: engine, sessions, bus, settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.jwt_auth import JwksVerifier
from shared.bus import Bus
from shared.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    jwks: JwksVerifier | None = None

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()
