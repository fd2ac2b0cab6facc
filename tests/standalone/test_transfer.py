"""From the standalone mode to the distributed one: `herald export` from SQLite, `herald import`
into PostgreSQL, through the real command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from services import demo
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.schema import CronJob, JobStatistics, Project, PublishingCredential, User
from tests.standalone.conftest import HERALD, SERVER_SETTINGS


def herald(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HERALD, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def seed_standalone_data(url: str, repository: Path) -> None:
    engine = create_engine(url)
    try:
        await demo.seed_demo(
            session_factory(engine),
            repository,
            token_file=repository / "herald.demo-token",
            issued_by="tests",
        )
    finally:
        await engine.dispose()


async def give_mastodon(url: str) -> str:
    """The demo project's Mastodon credential, sealed as the API stores it; the project id."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            project_id = await session.scalar(select(Project.id))
            assert project_id is not None
            session.add(
                PublishingCredential(
                    project_id=project_id,
                    network="mastodon",
                    settings={"instanceUrl": "https://mastodon.example"},
                    secret_encrypted="gAAAA-sealed-token",
                )
            )
    finally:
        await engine.dispose()
    return project_id


async def imported_credentials(url: str) -> list[tuple[str, str, dict[str, str], str]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return [
                (row.project_id, row.network, dict(row.settings), row.secret_encrypted)
                for row in await session.scalars(select(PublishingCredential))
            ]
    finally:
        await engine.dispose()


async def imported(url: str) -> tuple[list[str], list[tuple[str, bool, datetime | None]], int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            emails = list(await session.scalars(select(User.email).order_by(User.email)))
            jobs = [
                (job.name, job.is_enabled, job.next_run_at)
                for job in await session.scalars(select(CronJob).order_by(CronJob.name))
            ]
            statistics = await session.scalar(select(func.count()).select_from(JobStatistics))
            projects = await session.scalar(select(func.count()).select_from(Project))
            assert projects == 1
    finally:
        await engine.dispose()
    return emails, jobs, int(statistics or 0)


def test_projects_and_jobs_move_from_the_standalone_file_to_postgresql(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    source = f"sqlite:///{data / 'herald.db'}"
    upgrade(source)
    asyncio.run(seed_standalone_data(source, tmp_path))
    project_id = asyncio.run(give_mastodon(source))
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env["HERALD_DATA_DIR"] = str(data)

    exported = herald("export", "--output", str(tmp_path / "export.json"), env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    document = json.loads((tmp_path / "export.json").read_text())
    assert document["format"] == "herald-export"
    (owner,) = document["users"]
    assert owner["email"] == demo.DEMO_EMAIL
    assert sorted(job["name"] for job in owner["projects"][0]["jobs"]) == [
        "Daily digest",
        "Weekly digest",
    ]

    target = {**env, "DATABASE_URL": fresh_database_url}
    for expected in ("imported 1 project(s) and 2 job(s)", "imported 0 project(s) and 0 job(s)"):
        result = herald("import", str(tmp_path / "export.json"), env=target, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout  # a second import changes nothing

    emails, jobs, statistics = asyncio.run(imported(fresh_database_url))
    assert emails == [demo.DEMO_EMAIL]
    assert [(name, enabled) for name, enabled, _ in jobs] == [
        ("Daily digest", True),
        ("Weekly digest", True),
    ]
    # Next runs computed afresh: nothing replayed or reported missed on the new side.
    assert all(next_run is not None and next_run > datetime.now(UTC) for *_, next_run in jobs)
    assert statistics == 2
    # The publishing credential travels sealed, once however often it is imported.
    assert asyncio.run(imported_credentials(fresh_database_url)) == [
        (project_id, "mastodon", {"instanceUrl": "https://mastodon.example"}, "gAAAA-sealed-token")
    ]


def test_import_refuses_a_file_that_is_not_an_export(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "notes.json"
    path.write_text(json.dumps({"projects": []}))
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    result = herald("import", str(path), env={**env, "DATABASE_URL": database_url}, cwd=tmp_path)
    assert result.returncode == 2
    assert "not a herald export" in result.stderr
