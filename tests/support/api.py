"""The API app in process, its lifespan running (bus, relay, consumers), behind an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from services.api.main import create_app
from shared.settings import Settings


async def api_client(
    settings: Settings, *, base_url: str = "http://herald.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of an app built from `settings`; the app stops when the client does."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
