"""`make run`: migrate, seed a demo, and run the five services as separate processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from shared.accounts import ensure_user
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.schema import CronJob, JobStatistics, Project
from shared.ids import new_id
from shared.scheduling import preset_expression, preset_next_runs
from shared.settings import Settings
from shared.tokens import issue_token

SERVICES = ("api", "scheduler", "scanner", "generator", "notifier")
DEMO_EMAIL = "demo@herald.local"
START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RabbitMQ": "rabbitmq-server -detached",
}


def unreachable(settings: Settings) -> list[str]:
    """Name each server that does not accept a TCP connection at its configured URL."""
    problems = []
    db = make_url(settings.database_url)
    amqp = make_url(settings.amqp_url.replace("amqp://", "postgresql://", 1))
    for name, host, port, url in (
        ("PostgreSQL", db.host or "127.0.0.1", db.port or 5432, "DATABASE_URL"),
        ("RabbitMQ", amqp.host or "127.0.0.1", amqp.port or 5672, "AMQP_URL"),
    ):
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError as exc:
            problems.append(
                f"{name} does not answer at {host}:{port} ({exc.strerror or exc}). "
                f"Start it with `{START_HINTS[name]}`, or point {url} at a running server."
            )
    return problems


async def seed_demo(settings: Settings, checkout: Path) -> str:
    """Create the demo user, project and daily job if missing; return a fresh token."""
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        user = await ensure_user(session, email=DEMO_EMAIL, name="Demo")
        project = await session.scalar(
            select(Project).where(Project.user_id == user.id, Project.deleted_at.is_(None))
        )
        now = datetime.now(UTC)
        if project is not None and project.local_repo_path != str(checkout):
            # The demo scans the checkout `make run` starts from, wherever that now is.
            project.local_repo_path = str(checkout)
        if project is None:
            project = Project(
                id=new_id("prj"),
                user_id=user.id,
                name="herald",
                local_repo_path=str(checkout),
                platforms=["x", "linkedin", "blog", "changelog"],
                notification_settings={},
                created_at=now,
                updated_at=now,
            )
            session.add(project)
            await session.flush()
            time_config = {"hour": 9, "minute": 0, "timezone": "UTC"}
            job = CronJob(
                id=new_id("cron"),
                project_id=project.id,
                user_id=user.id,
                name="Daily digest",
                frequency="DAILY",
                time_config=time_config,
                schedule=preset_expression("DAILY", time_config),
                next_run_at=preset_next_runs("DAILY", time_config, now, 1)[0],
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            await session.flush()
            session.add(JobStatistics.empty(job.id))
        token = await issue_token(session, user_id=user.id, name="make run")
    await engine.dispose()
    return token


def run_all(settings: Settings) -> int:
    """Start every service, print where they are, stop them all on Ctrl-C."""
    problems = unreachable(settings)
    if problems:
        for problem in problems:
            print(f"herald: {problem}", file=sys.stderr)
        return 2
    checkout = Path.cwd().resolve()
    upgrade(settings.database_url)
    token = asyncio.run(seed_demo(settings, checkout))
    env = {
        **os.environ,
        "HERALD_LOCAL_REPOS_ROOT": os.environ.get("HERALD_LOCAL_REPOS_ROOT", str(checkout)),
    }
    children = {
        name: subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env)  # noqa: S603
        for name in SERVICES
    }
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(
        "\nherald is running in distributed mode (PostgreSQL and RabbitMQ answer).\n"
        f"  API:        {base}/api\n"
        f"  API docs:   {base}/docs\n"
        f"  Metrics:    {base}/metrics (workers on ports 9101-9104)\n"
        "  RabbitMQ:   http://127.0.0.1:15672 (guest/guest) if the management plugin is on\n"
        f"  Demo token: {token}\n\n"
        f"  Try: curl -H 'Authorization: Bearer {token}' {base}/api/cron/schedules\n"
        "Press Ctrl-C to stop.\n",
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
