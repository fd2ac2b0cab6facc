"""The demo `make run` and `herald standalone` seed, so a first start shows herald as it is used.

A user, a project on a local git repository, and two jobs as people set them up: a daily and
a weekly digest (presets, in the machine's zone when it names one, else UTC). The first start
also runs the weekly digest at once, as "Run now" would: its window is the last week, so it
writes posts about real commits within seconds. Later starts reuse what exists.
The repository is the checkout herald starts from when it has commits from that week;
otherwise a small repository created beside the data.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.triggers import trigger_manually
from services.demo_token import demo_token
from shared.accounts import ensure_user
from shared.db.schema import CronJob, JobStatistics, Project
from shared.ids import new_id
from shared.scheduling import (
    ScheduleError,
    preset_expression,
    preset_next_runs,
    validate_timezone,
)

DEMO_EMAIL = "demo@herald.local"
DEMO_PLATFORMS = ["x", "linkedin", "blog", "changelog"]
# What the first run covers: the weekly digest's window, a week back.
FIRST_WINDOW = timedelta(days=7)
DAILY = "Daily digest"
WEEKLY = "Weekly digest"
_DEMO_COMMITS = (
    ("Add a scheduler that fires jobs at their instant", "scheduler.txt"),
    ("Fix a daylight-saving bug in weekly jobs", "dst.txt"),
    ("Write release notes for 1.0", "NOTES.txt"),
)


@dataclass(frozen=True)
class Demo:
    """What a start seeded or found: the demo token, its jobs, the run this start began."""

    token: str
    jobs: tuple[str, ...]
    first_run: str | None  # the execution started now: on the first start only


def banner_lines(base: str, seeded: Demo) -> list[str]:
    """What the banner says of the demo: the run this start began, or what is already there."""
    auth = f"curl -H 'Authorization: Bearer {seeded.token}'"
    if seeded.first_run is not None:
        return [
            f"  The demo's first run ({WEEKLY}, the last {FIRST_WINDOW.days} days of commits) "
            "has started;",
            f"  watch it at {base}/console/executions/{seeded.first_run}, or read its posts with:",
            f"  {auth} {base}/api/cron/executions/{seeded.first_run}/content",
            f"  {auth} {base}/api/notifications",
        ]
    jobs = ", ".join(seeded.jobs) or "none left"
    return [
        f"  The demo's jobs ({jobs}), their runs and posts: {base}/console/jobs",
        f"  {auth} {base}/api/cron/executions",
    ]


def demo_repository(checkout: Path, data_dir: Path, *, now: datetime) -> Path:
    """The checkout when it has commits from the first run's week, else a repository of our own."""
    latest = _latest_commit(checkout)
    if latest is not None and latest > now - FIRST_WINDOW:
        return checkout
    repo = data_dir / "demo-repo"
    if _latest_commit(repo) is None:
        _create_repository(repo)
    return repo


def repos_root(checkout: Path, repository: Path) -> Path:
    """The local repositories root when none is configured: the checkout, if it holds the demo."""
    return checkout if checkout in (repository, *repository.parents) else repository


def local_zone(
    environ: Mapping[str, str] = os.environ,
    localtime: Path = Path("/etc/localtime"),
    timezone_file: Path = Path("/etc/timezone"),
) -> str:
    """The machine's IANA zone (`TZ`, else what /etc/localtime or /etc/timezone names), or UTC."""
    candidates = [environ.get("TZ", "").removeprefix(":")]
    with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: a symlink loop
        candidates.append(str(localtime.resolve(strict=True)))
    with contextlib.suppress(OSError):
        candidates.append(timezone_file.read_text().strip())
    for candidate in candidates:
        name = _zone_name(candidate)
        if name is not None:
            return name
    return "UTC"


def _zone_name(candidate: str) -> str | None:
    """An IANA zone name from a name or a path into a zoneinfo tree; None if it is neither."""
    parts = Path(candidate).parts
    if "zoneinfo" in parts:
        parts = parts[parts.index("zoneinfo") + 1 :]
        if parts and parts[0] in ("posix", "right"):
            parts = parts[1:]
    elif candidate.startswith("/"):
        return None
    name = "/".join(parts)
    if not name:
        return None
    try:
        validate_timezone(name)
    except ScheduleError:
        return None
    return name


async def seed_demo(
    sessions: async_sessionmaker[AsyncSession],
    repository: Path,
    *,
    token_file: Path,
    issued_by: str,
    zone: str | None = None,
) -> Demo:
    """Create the demo and start its first run on the first start; find it on later ones."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        user = await ensure_user(
            session, email=DEMO_EMAIL, name="Demo", timezone=zone or local_zone()
        )
        project = await session.scalar(
            select(Project).where(Project.user_id == user.id, Project.deleted_at.is_(None))
        )
        first_run = None
        if project is None:
            project, weekly = await _seed_project(session, user.id, user.timezone, repository, now)
            first_run = (
                await trigger_manually(session, job=weekly, project=project, user_id=user.id)
            ).id
        elif project.local_repo_path != str(repository):
            # The demo scans the repository this start chose, wherever the checkout now is.
            project.local_repo_path = str(repository)
            project.updated_at = now
        jobs = await session.scalars(
            select(CronJob.name)
            .where(CronJob.project_id == project.id, CronJob.deleted_at.is_(None))
            .order_by(CronJob.name)
        )
        names = tuple(jobs)
        token = await demo_token(session, user_id=user.id, path=token_file, name=issued_by)
    return Demo(token=token, jobs=names, first_run=first_run)


async def _seed_project(
    session: AsyncSession, user_id: str, zone: str, repository: Path, now: datetime
) -> tuple[Project, CronJob]:
    """The demo's project, its daily and weekly digests; return the project and the weekly."""
    project = Project(
        id=new_id("prj"),
        user_id=user_id,
        name="Demo project",
        local_repo_path=str(repository),
        platforms=DEMO_PLATFORMS,
        notification_settings={},
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    await session.flush()
    daily = _preset(
        project,
        name=DAILY,
        description="Yesterday's commits, pull requests and issues, every morning.",
        frequency="DAILY",
        time_config={"hour": 9, "minute": 0, "timezone": zone},
        now=now,
    )
    weekly = _preset(
        project,
        name=WEEKLY,
        description="The week's activity, every Monday morning.",
        frequency="WEEKLY",
        time_config={"hour": 9, "minute": 0, "dayOfWeek": 1, "timezone": zone},
        now=now,
    )
    session.add_all([daily, weekly])
    await session.flush()
    session.add_all([JobStatistics.empty(job.id, job.user_id) for job in (daily, weekly)])
    return project, weekly


def _preset(
    project: Project, *, frequency: str, time_config: dict[str, Any], now: datetime, **fields: Any
) -> CronJob:
    return _job(
        project,
        frequency=frequency,
        time_config=time_config,
        schedule=preset_expression(frequency, time_config),
        next_run_at=preset_next_runs(frequency, time_config, now, 1)[0],
        now=now,
        **fields,
    )


def _job(project: Project, *, now: datetime, **fields: object) -> CronJob:
    return CronJob(
        id=new_id("cron"),
        project_id=project.id,
        user_id=project.user_id,
        created_at=now,
        updated_at=now,
        **fields,
    )


def _latest_commit(repo: Path) -> datetime | None:
    if not (repo / ".git").exists():
        return None
    try:
        out = subprocess.run(  # noqa: S603
            ["git", "-C", str(repo), "log", "-1", "--format=%ct"],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return datetime.fromtimestamp(int(out), UTC) if out else None


def _create_repository(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    identity = {
        "GIT_AUTHOR_NAME": "herald demo",
        "GIT_AUTHOR_EMAIL": "demo@herald.local",
        "GIT_COMMITTER_NAME": "herald demo",
        "GIT_COMMITTER_EMAIL": "demo@herald.local",
    }
    env = {**os.environ, **identity}

    def git(*args: str) -> None:
        subprocess.run(  # noqa: S603
            ["git", "-C", str(repo), *args],  # noqa: S607
            check=True,
            capture_output=True,
            env=env,
            timeout=30,
        )

    git("init", "-q")
    for message, name in _DEMO_COMMITS:
        (repo / name).write_text(message + "\n")
        git("add", name)
        git("commit", "-q", "-m", message)
