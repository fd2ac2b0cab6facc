"""`make run`: migrate, seed a demo, and run the six services as separate processes.

Where the servers do not answer, `make run` runs the standalone mode instead (one process,
SQLite, an in-process bus): the same demo, nothing to install.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from services.demo import Demo, banner_lines, demo_repository, repos_root, seed_demo
from services.standalone.main import run_standalone
from shared.db.engine import create_engine, is_sqlite, session_factory
from shared.db.migrate import upgrade
from shared.settings import Settings

SERVICES = ("api", "scheduler", "scanner", "generator", "notifier", "publisher")
START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RabbitMQ": "rabbitmq-server -detached",
}


@dataclass(frozen=True)
class Unanswered:
    """A server that did not accept a TCP connection at its configured URL."""

    name: str
    address: str
    error: str
    setting: str

    def __str__(self) -> str:
        return f"{self.name} does not answer at {self.address} ({self.error})"

    @property
    def hint(self) -> str:
        return (
            f"for the distributed mode, start {self.name} with `{START_HINTS[self.name]}` "
            f"or point {self.setting} at a running server"
        )


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def unreachable(settings: Settings) -> list[Unanswered]:
    """Name each server that does not accept a TCP connection at its configured URL."""
    problems = []
    db = make_url(settings.database_url)
    amqp = make_url(settings.amqp_url.replace("amqp://", "postgresql://", 1))
    for name, host, port, setting in (
        ("PostgreSQL", db.host or "127.0.0.1", db.port or 5432, "DATABASE_URL"),
        ("RabbitMQ", amqp.host or "127.0.0.1", amqp.port or 5672, "AMQP_URL"),
    ):
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            problems.append(Unanswered(name, f"{host}:{port}", exc.strerror or str(exc), setting))
    return problems


def _redis(settings: Settings) -> tuple[str, str]:
    """The Redis the services share budgets through, and the banner's line about it.

    Redis is optional: without one answering, each process keeps its own budgets.
    """
    url = settings.redis_url or DEFAULT_REDIS_URL
    parsed = make_url(url.replace("redis://", "postgresql://", 1))
    host, port = parsed.host or "127.0.0.1", parsed.port or 6379
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return "", (
            f"kept by each process (Redis does not answer at {host}:{port}: "
            f"{exc.strerror or exc}; set HERALD_REDIS_URL to share them)"
        )
    return url, f"shared through Redis at {host}:{port}"


# Beside the standalone mode's files, but its own: the two modes keep different databases.
DEMO_TOKEN_FILE = "distributed.demo-token"  # noqa: S105 - a file name, not a secret


async def _seed(settings: Settings, repository: Path, token_file: Path) -> Demo:
    engine = create_engine(settings.database_url)
    try:
        return await seed_demo(
            session_factory(engine),
            repository,
            token_file=token_file,
            issued_by="make run",
        )
    finally:
        await engine.dispose()


def run_all(settings: Settings) -> int:
    """Start every service, print where they are, stop them all on Ctrl-C.

    Where PostgreSQL or RabbitMQ does not answer (or DATABASE_URL is a SQLite file), run the
    standalone mode instead, saying why.
    """
    if is_sqlite(settings.database_url):
        return run_standalone(settings, reason="DATABASE_URL is a SQLite file")
    problems = unreachable(settings)
    if problems:
        for problem in problems:
            print(f"herald: {problem}; {problem.hint}.", file=sys.stderr)
        reason = "; ".join(str(problem) for problem in problems)
        return run_standalone(settings, reason=reason)
    redis_url, redis_line = _redis(settings)
    checkout = Path.cwd().resolve()
    upgrade(settings.database_url)
    repository = demo_repository(checkout, Path(settings.data_dir).resolve(), now=datetime.now(UTC))
    token_file = Path(settings.data_dir).resolve() / DEMO_TOKEN_FILE
    demo = asyncio.run(_seed(settings, repository, token_file))
    env = {
        **os.environ,
        "HERALD_LOCAL_REPOS_ROOT": os.environ.get(
            "HERALD_LOCAL_REPOS_ROOT", str(repos_root(checkout, repository))
        ),
        "HERALD_REDIS_URL": redis_url,
    }
    children = {
        name: subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env)  # noqa: S603
        for name in SERVICES
    }
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(
        "\nherald is running in distributed mode (PostgreSQL and RabbitMQ answer).\n"
        f"  Console:    {base}/console (sign in with the demo token)\n"
        f"  API:        {base}/api\n"
        f"  API docs:   {base}/docs\n"
        f"  Metrics:    {base}/metrics (workers on ports 9101-9104)\n"
        "  RabbitMQ:   http://127.0.0.1:15672 (guest/guest) if the management plugin is on\n"
        f"  Budgets:    {redis_line}\n"
        f"  Demo token: {demo.token} (kept in {token_file})\n\n"
        + "\n".join(banner_lines(base, demo))
        + "\nPress Ctrl-C to stop.\n",
        flush=True,
    )
    return _supervise(children)


def _supervise(children: dict[str, subprocess.Popen[bytes]]) -> int:
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(
                    f"herald: the {name} service exited ({child.returncode}); stopping",
                    file=sys.stderr,
                )
                stopping, status = True, 1
        time.sleep(0.3)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("herald: stopped.", flush=True)
    return status
