"""Composition root of the standalone mode: the six services in one process, no servers.

The same composition as the distributed mode, service by service: the api app and its
pipeline consumer, the scheduler's claim loop, due-posts loop and outbox relay, and the
scanner, generator, notifier and publisher handlers, each on its own client of one
in-process broker (`membus`) and on a SQLite file migrated by the same Alembic scripts.
Wake-ups that PostgreSQL's NOTIFY carries between processes are in-process events here
(`shared.db.notify.local_wakeup`).

Start-up, in order: take the database file's lock (one process per file, so one scheduler),
refuse a file that is not herald's, migrate, queue again what the last run left unacked,
seed the demo on the first start, serve until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from services import demo
from services.api.main import serve as serve_api
from services.generator.main import setup as setup_generator
from services.notifier.main import setup as setup_notifier
from services.publisher.main import setup as setup_publisher
from services.scanner.main import setup as setup_scanner
from services.scheduler.lateness import observe_lateness
from services.scheduler.loops import Clock, offset_clock, run_loops
from services.standalone.datafile import DataFileError, DataFiles, check_database, data_files
from services.standalone.membus import MemoryBroker, MemoryBus
from services.standalone.queuestore import QueueStore
from shared.db.engine import create_engine, session_factory
from shared.db.filelock import DatabaseInUseError, hold_lock
from shared.db.migrate import upgrade
from shared.events import JobDue
from shared.logging import configure_logging
from shared.runtime import install_stop_signals
from shared.scheduling.zonedata import use_zone_source
from shared.settings import Settings

log = structlog.get_logger(__name__)

Cleanup = Callable[[], Awaitable[None]]
WORKERS = (
    ("scanner", setup_scanner),
    ("generator", setup_generator),
    ("notifier", setup_notifier),
    ("publisher", setup_publisher),
)
# Longest wait for in-flight handlers at shutdown; what is left is redone at the next start.
DRAIN_GRACE = 10.0


@dataclass(frozen=True)
class Start:
    """What a start of the standalone mode prints: the mode's reason and where things are."""

    reason: str
    files: DataFiles
    demo: demo.Demo
    redelivered: int


class SchedulerBus(MemoryBus):
    """The scheduler's client: times each scheduled fire, as `BatchPublishingBus` does."""

    def __init__(self, broker: MemoryBroker, *, clock: Clock) -> None:
        super().__init__(broker)
        self._clock = clock

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        await super().publish_raw(routing_key, body, message_id=message_id)
        if routing_key == JobDue.routing_key:
            observe_lateness(body, self._clock())


def run_standalone(settings: Settings, *, reason: str) -> int:
    """Run every service in this process until stopped; return the exit status."""
    configure_logging(service="standalone", level=settings.log_level, fmt=settings.log_format)
    use_zone_source(settings.tzpath)
    files = data_files(settings)
    try:
        lock = hold_lock(files.database)
    except DatabaseInUseError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    try:
        check_database(files.database)
        if not _port_free(settings.api_host, settings.api_port):
            print(
                f"herald: port {settings.api_port} on {settings.api_host} is in use; "
                "stop what holds it or set HERALD_API_PORT",
                file=sys.stderr,
            )
            return 2
        upgrade(files.url)
        settings, repository = _standalone_settings(settings, files)
        return asyncio.run(_serve(settings, files, repository, reason=reason))
    except DataFileError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    finally:
        lock.release()


def _standalone_settings(settings: Settings, files: DataFiles) -> tuple[Settings, Path]:
    """The settings on the SQLite file, and the demo's repository (under the repos root)."""
    checkout = Path.cwd().resolve()
    repository = demo.demo_repository(checkout, files.database.parent, now=datetime.now(UTC))
    root = os.environ.get("HERALD_LOCAL_REPOS_ROOT") or str(demo.repos_root(checkout, repository))
    update = {"database_url": files.url, "local_repos_root": root}
    if "HERALD_PUBLIC_URL" not in os.environ:
        # Links in alerts point at this process's API, wherever its port is.
        update["public_url"] = f"http://{settings.api_host}:{settings.api_port}"
    return settings.model_copy(update=update), repository


async def _serve(settings: Settings, files: DataFiles, repository: Path, *, reason: str) -> int:
    stop = install_stop_signals()
    engine = create_engine(settings.database_url, application_name="herald-standalone")
    sessions = session_factory(engine)
    broker = MemoryBroker(
        QueueStore(files.queues),
        prefetch=settings.worker_concurrency,
        delivery_limit=settings.delivery_limit,
    )
    redelivered = await broker.open()
    cleanups: list[Cleanup] = []
    workers = []
    try:
        for name, setup in WORKERS:
            bus = broker.client()
            await bus.start()
            cleanup = await setup(bus, settings)
            workers.append(bus)
            if cleanup is not None:
                cleanups.append(cleanup)
            log.info("service started", service=name)
        seeded = await demo.seed_demo(
            sessions, repository, token_file=files.demo_token, issued_by="standalone start"
        )
        api = asyncio.create_task(serve_api(settings, bus=broker.client(), stop=stop))
        clock = offset_clock(settings.scheduler_clock_offset)
        scheduler = asyncio.create_task(
            run_loops(settings, sessions, SchedulerBus(broker, clock=clock), stop=stop, clock=clock)
        )
        if await _api_listening(settings, api):
            _print_banner(settings, Start(reason, files, seeded, redelivered))
        await asyncio.wait({api, asyncio.create_task(stop.wait())}, return_when="FIRST_COMPLETED")
        stop.set()
        await asyncio.gather(api, scheduler, return_exceptions=True)
        failed = api.exception() if api.done() and not api.cancelled() else None
    finally:
        for bus in workers:
            await bus.close(grace=DRAIN_GRACE)
        for cleanup in cleanups:
            await cleanup()
        await broker.close()
        await engine.dispose()
    log.info("standalone stopped")
    return 1 if failed is not None else 0


async def _api_listening(settings: Settings, api: asyncio.Task[None], within: float = 30) -> bool:
    """Wait until the API accepts connections (False if it stopped first)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not api.done() and loop.time() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(settings.api_host, settings.api_port)
            writer.close()
            return True
        await asyncio.sleep(0.05)
    return False


def _print_banner(settings: Settings, start: Start) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    token = start.demo.token
    lines = [
        "",
        "herald is running in standalone mode: all six services in this process, "
        "SQLite and an in-process bus.",
        f"  Why:        {start.reason}",
        f"  Console:    {base}/console (sign in with the demo token)",
        f"  API:        {base}/api",
        f"  API docs:   {base}/docs",
        f"  Metrics:    {base}/metrics",
        f"  Data:       {start.files.database} (and {start.files.queues.name})",
        f"  Demo token: {token} (kept in {start.files.demo_token.name}, shown at every start)",
    ]
    if start.redelivered:
        lines.append(f"  Resuming:   {start.redelivered} message(s) left unfinished last time")
    lines += ["", *demo.banner_lines(base, start.demo)]
    lines += [
        "Press Ctrl-C to stop (unfinished work resumes at the next start).",
        "",
    ]
    print("\n".join(lines), flush=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # As the server will: a port left in TIME_WAIT by the last run is free to reuse.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
