"""Background loops that cannot die unseen: logged with the traceback, counted, restarted.

A loop that raises (or returns before the process stops) is a bug or an outage the loop did
not expect. Either way it must not look like nothing: the supervisor logs it with its
traceback, counts it in `herald_background_loop_crashes_total`, reports the process not ready
(`/readyz` check `loops`) while the loop waits to restart, and restarts it with backoff. A loop
that stayed up for `HEALTHY_AFTER` seconds starts its backoff again from the first step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiormq.exceptions import AMQPError
from structlog.typing import FilteringBoundLogger

from shared import metrics
from shared.db.engine import is_disconnect
from shared.retry import compute_backoff
from shared.runtime import pause

log = structlog.get_logger(__name__)

Loop = Callable[[], Awaitable[None]]

#: Seconds a loop must run before a crash counts as a first one again.
HEALTHY_AFTER = 60.0


class Supervisor:
    """Run a process's background loops until `stop`, restarting any that ends early."""

    def __init__(
        self,
        service: str,
        stop: asyncio.Event,
        *,
        first_restart: float = 1.0,
        longest_restart: float = 60.0,
    ) -> None:
        self._service = service
        self._stop = stop
        self._first_restart = first_restart
        self._longest_restart = longest_restart
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._down: set[str] = set()
        self._optional: set[str] = set()

    def start(self, name: str, loop: Loop, *, essential: bool = True) -> None:
        """Run `loop()` under supervision; `name` labels its logs and metrics.

        A loop that is not `essential` (a gauge, housekeeping) is reported by `ready(False)`
        only: the process keeps serving while it waits to restart.
        """
        if name in self._tasks:
            raise ValueError(f"a loop named {name!r} is already supervised")
        if not essential:
            self._optional.add(name)
        metrics.BACKGROUND_LOOP_UP.labels(service=self._service, loop=name).set(1)
        self._tasks[name] = asyncio.create_task(self._keep(name, loop), name=name)

    @property
    def down(self) -> frozenset[str]:
        """The loops waiting to be restarted after a crash."""
        return frozenset(self._down)

    async def ready(self, essential: bool = True) -> bool:
        """A readiness check: every essential loop (or, with False, every other) is running."""
        if essential:
            return not self._down - self._optional
        return not self._down & self._optional

    async def wait(self) -> None:
        """Wait for every loop to end (after `stop` is set)."""
        await asyncio.gather(*self._tasks.values())

    async def cancel(self, grace: float = 0.0) -> None:
        """End every loop and forget them (a process may start its loops again).

        With `grace` (and `stop` set), the loops first have that long to end their pass on
        their own: a loop cancelled in the middle of a transaction leaves its connection to
        the garbage collector, and on SQLite that connection may hold the write lock.
        """
        tasks = list(self._tasks.values())
        if grace > 0 and tasks and self._stop.is_set():
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._down.clear()
        self._optional.clear()

    async def _keep(self, name: str, loop: Loop) -> None:
        crashes = 0
        labels = {"service": self._service, "loop": name}
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await loop()
            except Exception:
                log.exception("background loop crashed", loop=name)
            else:
                if self._stop.is_set():
                    return
                log.error("background loop ended before the process stopped", loop=name)
            if time.monotonic() - started >= HEALTHY_AFTER:
                crashes = 0
            crashes += 1
            metrics.BACKGROUND_LOOP_CRASHES.labels(**labels).inc()
            metrics.BACKGROUND_LOOP_UP.labels(**labels).set(0)
            self._down.add(name)
            delay = compute_backoff(
                crashes,
                base=self._first_restart,
                max_backoff=self._longest_restart,
                floor=min(self._first_restart, 1.0),
            )
            log.warning("restarting background loop", loop=name, restart_in=round(delay, 2))
            stopped = await pause(delay, self._stop)
            self._down.discard(name)
            metrics.BACKGROUND_LOOP_UP.labels(**labels).set(1)
            if stopped:
                return


def log_failed_pass(logger: FilteringBoundLogger, event: str, exc: Exception) -> None:
    """Log a failed pass of a loop that retries: an outage in one line, anything else (a bug,
    a query the database refused) with its traceback."""
    if is_disconnect(exc) or isinstance(exc, AMQPError):
        logger.warning(event, error=str(exc) or type(exc).__name__)
    else:
        logger.error(event, exc_info=exc)
