"""The demo `make run` and `herald standalone` seed, so a first start shows herald working.

A user, a project on a local git repository, a daily job, and a "first run" job due within a
minute whose window reaches a year back, so its execution writes posts about real commits.
The repository is the checkout herald starts from when it has commits from the past year;
otherwise a small repository created beside the data.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.accounts import ensure_user
from shared.db.schema import CronJob, JobStatistics, Project
from shared.ids import new_id
from shared.scheduling import preset_expression, preset_next_runs
from shared.tokens import issue_token

DEMO_EMAIL = "demo@herald.local"
DEMO_PLATFORMS = ["x", "linkedin", "blog", "changelog"]
# The first run fires at the first whole minute at least this far ahead: time to read the
# banner, and never a slot already behind the scheduler.
FIRST_RUN_LEAD = timedelta(seconds=15)
_DEMO_COMMITS = (
    ("Add a scheduler that fires jobs at their instant", "scheduler.txt"),
    ("Fix a daylight-saving bug in weekly jobs", "dst.txt"),
    ("Write release notes for 1.0", "NOTES.txt"),
)


def demo_repository(checkout: Path, data_dir: Path, *, now: datetime) -> Path:
    """The checkout when it has commits from the past year, else a small repository of our own."""
    latest = _latest_commit(checkout)
    if latest is not None and latest > now - timedelta(days=365):
        return checkout
    repo = data_dir / "demo-repo"
    if _latest_commit(repo) is None:
        _create_repository(repo)
    return repo


def repos_root(checkout: Path, repository: Path) -> Path:
    """The local repositories root when none is configured: the checkout, if it holds the demo."""
    return checkout if checkout in (repository, *repository.parents) else repository


def first_run_schedule(now: datetime) -> tuple[str, datetime]:
    """A yearly cron expression (UTC) whose next slot is within a minute, and that slot.

    Yearly, so its first window (back to the previous slot) spans a year of commits, and the
    demo does not fire it again every day.
    """
    slot = (now + FIRST_RUN_LEAD + timedelta(seconds=59)).replace(second=0, microsecond=0)
    return f"{slot.minute} {slot.hour} {slot.day} {slot.month} *", slot


async def seed_demo(
    sessions: async_sessionmaker[AsyncSession], repository: Path, *, issued_by: str
) -> str:
    """Create the demo user, project and jobs on first start; return a fresh token."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        user = await ensure_user(session, email=DEMO_EMAIL, name="Demo")
        project = await session.scalar(
            select(Project).where(Project.user_id == user.id, Project.deleted_at.is_(None))
        )
        if project is None:
            project = await _seed_project(session, user.id, repository, now)
        elif project.local_repo_path != str(repository):
            # The demo scans the repository this start chose, wherever the checkout now is.
            project.local_repo_path = str(repository)
            project.updated_at = now
        token = await issue_token(session, user_id=user.id, name=issued_by)
    return token


async def _seed_project(
    session: AsyncSession, user_id: str, repository: Path, now: datetime
) -> Project:
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
    daily = {"hour": 9, "minute": 0, "timezone": "UTC"}
    expression, first_slot = first_run_schedule(now)
    jobs = [
        _job(
            project,
            name="Daily digest",
            frequency="DAILY",
            time_config=daily,
            schedule=preset_expression("DAILY", daily),
            next_run_at=preset_next_runs("DAILY", daily, now, 1)[0],
            now=now,
        ),
        _job(
            project,
            name="First run",
            description="Runs within a minute of the first start (then yearly): a year of commits.",
            frequency="CUSTOM",
            time_config={"timezone": "UTC"},
            schedule=expression,
            next_run_at=first_slot,
            now=now,
        ),
    ]
    session.add_all(jobs)
    await session.flush()
    session.add_all([JobStatistics.empty(job.id, job.user_id) for job in jobs])
    return project


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
