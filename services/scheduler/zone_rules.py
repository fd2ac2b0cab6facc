"""The time-zone rules a scheduler computes next runs with, kept current while it runs.

At start, and every `check_every` seconds after, the version on disk is read (one line of
one file). When it changed, every zone and run cached under the old rules is dropped, and
the stored next runs are brought up to the new version (`moves`), a batch per pass of the
claim loop until none remain. The record is looked at on each check too: a scheduler that
stopped half-way leaves the rest to whichever replica runs the same version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import moves
from shared import metrics
from shared.dispatch import forget_rules
from shared.scheduling.zonedata import database_version, is_newer

log = structlog.get_logger(__name__)

# Seconds between looks at the time-zone database on disk and at the recorded version.
CHECK_INTERVAL = 60.0


class ZoneRules:
    """The version of the time-zone database this scheduler follows, and its catching up."""

    def __init__(
        self,
        *,
        check_every: float = CHECK_INTERVAL,
        read_version: Callable[[], str | None] = database_version,
    ) -> None:
        self._check_every = check_every
        self._read_version = read_version
        self._checked = -math.inf
        self._working = False
        self._warned: str | None = None
        self.version = read_version()
        if self.version is None:
            log.warning(
                "time-zone database version unknown: next runs are not computed again "
                "when its rules change"
            )
        self._publish()

    async def keep_current(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: datetime,
        batch: int,
        public_url: str,
    ) -> bool:
        """Take one step towards next runs that follow the current rules; return whether
        more remain (the claim loop then goes on without sleeping)."""
        if time.monotonic() - self._checked >= self._check_every:
            self._checked = time.monotonic()
            self._reload()
            self._working = True
        if not self._working or self.version is None:
            return False
        result = await moves.step(
            sessions, version=self.version, now=now, batch=batch, public_url=public_url
        )
        self._working = result.more
        recorded = result.recorded
        if recorded is not None and recorded != self._warned and is_newer(recorded, self.version):
            self._warned = recorded
            log.warning(
                "this scheduler's time-zone database is older than the recorded one: "
                "the next runs it writes follow older rules until it is upgraded",
                version=self.version,
                recorded_version=recorded,
            )
        return result.more

    def _reload(self) -> None:
        version = self._read_version()
        if version == self.version:
            return
        log.info("time-zone database changed", previous_version=self.version, version=version)
        forget_rules()
        self.version = version
        self._publish()

    def _publish(self) -> None:
        metrics.SCHEDULER_TZ_DATABASE.clear()
        metrics.SCHEDULER_TZ_DATABASE.labels(version=self.version or "unknown").set(1)
