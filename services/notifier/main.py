"""Composition root of the notifier."""

from __future__ import annotations

from services.notifier.handlers import make_handler
from shared import topology
from shared.bus import Bus
from shared.settings import Settings
from shared.worker import main_for


async def setup(bus: Bus, settings: Settings) -> None:
    await bus.consume(topology.NOTIFIER_QUEUE, make_handler(bus))


def main() -> None:
    main_for("notifier", setup)
