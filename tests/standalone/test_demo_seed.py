"""The demo seed on a standalone database: the first start seeds and runs, later ones reuse."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from services import demo
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.schema import ApiToken, CronJob, Execution, OutboxMessage
from shared.tokens import hash_token


async def seed(url: str, repository: Path, token_file: Path) -> demo.Demo:
    engine = create_engine(url)
    try:
        return await demo.seed_demo(
            session_factory(engine),
            repository,
            token_file=token_file,
            issued_by="tests",
            zone="Europe/Berlin",
        )
    finally:
        await engine.dispose()


async def records(url: str) -> tuple[list[CronJob], list[Execution], list[ApiToken], list[str]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            jobs = list(await session.scalars(select(CronJob).order_by(CronJob.name)))
            runs = list(await session.scalars(select(Execution)))
            tokens = list(await session.scalars(select(ApiToken)))
            due = list(
                await session.scalars(
                    select(OutboxMessage.payload).where(OutboxMessage.routing_key == "job.due")
                )
            )
    finally:
        await engine.dispose()
    return jobs, runs, tokens, due


def valid(tokens: list[ApiToken]) -> list[str]:
    return [token.token_hash for token in tokens if token.revoked_at is None]


def test_the_first_start_seeds_two_preset_jobs_and_runs_the_weekly_over_the_last_week(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    upgrade(url)
    token_file = tmp_path / "herald.demo-token"

    first = asyncio.run(seed(url, tmp_path, token_file))

    jobs, runs, tokens, due = asyncio.run(records(url))
    assert [(job.name, job.frequency, job.schedule) for job in jobs] == [
        ("Daily digest", "DAILY", "0 9 * * *"),
        ("Weekly digest", "WEEKLY", "0 9 * * 1"),
    ]
    assert {job.time_config["timezone"] for job in jobs} == {"Europe/Berlin"}
    assert first.jobs == ("Daily digest", "Weekly digest")
    # The first run: started now, by hand as "Run now" would, on the weekly job, a week back.
    (run,) = runs
    assert first.first_run == run.id
    assert (run.job_id, run.trigger, run.status) == (jobs[1].id, "MANUAL", "PENDING")
    assert run.window_start is not None and run.window_end is not None
    # A week, give or take the hour a daylight-saving change in Berlin that week moves.
    assert abs(run.window_end - run.window_start - timedelta(days=7)) <= timedelta(hours=1)
    (event,) = [json.loads(payload) for payload in due]
    assert event["executionId"] == run.id
    assert event["repository"]["localPath"] == str(tmp_path)
    # One token, stored for the next start, readable by its owner alone.
    assert valid(tokens) == [hash_token(first.token)]
    assert token_file.read_text().strip() == first.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_a_restart_reuses_the_demo_its_token_and_starts_no_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    upgrade(url)
    token_file = tmp_path / "herald.demo-token"
    first = asyncio.run(seed(url, tmp_path, token_file))

    again = asyncio.run(seed(url, tmp_path, token_file))

    jobs, runs, tokens, _ = asyncio.run(records(url))
    assert len(jobs) == 2
    assert len(runs) == 1
    assert again.first_run is None
    assert again.jobs == first.jobs
    assert again.token == first.token
    assert valid(tokens) == [hash_token(first.token)]


def test_without_its_stored_token_a_restart_issues_one_and_revokes_the_last(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    upgrade(url)
    token_file = tmp_path / "herald.demo-token"
    first = asyncio.run(seed(url, tmp_path, token_file))
    token_file.unlink()

    second = asyncio.run(seed(url, tmp_path, token_file))
    token_file.write_text("hrld_not-a-token-of-this-database\n")
    third = asyncio.run(seed(url, tmp_path, token_file))

    _, runs, tokens, _ = asyncio.run(records(url))
    assert len({first.token, second.token, third.token}) == 3
    assert valid(tokens) == [hash_token(third.token)]
    assert token_file.read_text().strip() == third.token
    assert len(runs) == 1
