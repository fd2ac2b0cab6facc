"""Composition root of the generator: the bus and the cancellation set."""

from __future__ import annotations

from services.generator.handlers import make_handler
from shared import topology
from shared.bus import Bus
from shared.cancellation import CancelledSet
from shared.settings import Settings
from shared.worker import main_for


async def setup(bus: Bus, settings: Settings) -> None:
    cancelled = CancelledSet()
    await bus.on_cancelled(cancelled.add)
    await bus.consume(topology.GENERATOR_QUEUE, make_handler(bus, cancelled))


def main() -> None:
    main_for("generator", setup)
