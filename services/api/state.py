"""What the API process holds for its lifetime: engine, sessions, bus, settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import Bus
from shared.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
