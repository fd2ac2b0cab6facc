"""`herald jobs webhook` on the real database, as an operator runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.cli import app
from shared.db.engine import create_engine, session_factory
from shared.db.schema import CronJob
from shared.secrets import decrypt, encrypt, generate_key
from shared.settings import get_settings
from tests.support import factories

KEY = generate_key()
URL = "https://hooks.example.com/in/cli0T0K3N"
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def cli(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("HERALD_SECRET_KEY", KEY)
    monkeypatch.delenv("HERALD_OUTBOUND_ALLOW_NETWORKS", raising=False)
    monkeypatch.delenv("HERALD_WEBHOOK_ALLOW_HTTP", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def seeded(job_type: str) -> str:
    async def work(sessions: Sessions) -> str:
        user_id, _ = await factories.user_with_token(sessions)
        project = await factories.project(sessions, user_id, name="hello")
        fields = {}
        if job_type == "WEBHOOK":
            fields = {
                "webhook_url_encrypted": encrypt(URL, KEY),
                "webhook_secret_encrypted": encrypt("first-secret", KEY),
                "webhook_host": "hooks.example.com",
            }
        job = await factories.job(sessions, project, next_run_at=None, type=job_type, **fields)
        return job.id

    return run(work)


def stored(job_id: str) -> CronJob:
    async def work(sessions: Sessions) -> CronJob | None:
        async with sessions() as session:
            return await session.get(CronJob, job_id)

    job = run(work)
    assert job is not None
    return job


def test_the_receiver_is_shown_by_host_and_replaced_from_stdin(cli: CliRunner) -> None:
    job_id = seeded("WEBHOOK")

    shown = cli.invoke(app, ["jobs", "webhook", job_id])
    assert shown.exit_code == 0, shown.output
    assert f"{job_id}: delivers to hooks.example.com" in shown.output
    assert "cli0T0K3N" not in shown.output

    moved = cli.invoke(
        app, ["jobs", "webhook", job_id, "--url-stdin"], input="https://other.example.org/in\n"
    )
    assert moved.exit_code == 0, moved.output
    assert "delivers to other.example.org" in moved.output
    row = stored(job_id)
    assert row.webhook_url_encrypted is not None and row.webhook_secret_encrypted is not None
    assert decrypt(row.webhook_url_encrypted, KEY) == "https://other.example.org/in"
    assert decrypt(row.webhook_secret_encrypted, KEY) == "first-secret"


def test_a_url_the_api_would_refuse_is_refused_with_its_rule(cli: CliRunner) -> None:
    job_id = seeded("WEBHOOK")
    before = stored(job_id).webhook_url_encrypted

    refused = cli.invoke(
        app, ["jobs", "webhook", job_id, "--url-stdin"], input="https://192.168.1.4/cli0T0K3N\n"
    )

    assert refused.exit_code == 2
    assert "--url-stdin" in refused.output and "a private address" in refused.output
    assert "cli0T0K3N" not in refused.output
    assert stored(job_id).webhook_url_encrypted == before


def test_a_renewed_secret_is_printed_once_and_stored_encrypted(cli: CliRunner) -> None:
    job_id = seeded("WEBHOOK")

    renewed = cli.invoke(app, ["jobs", "webhook", job_id, "--renew-secret"])

    assert renewed.exit_code == 0, renewed.output
    secret = renewed.output.split("signing secret (shown once): ", 1)[1].strip()
    assert len(secret) >= 40
    row = stored(job_id)
    assert row.webhook_secret_encrypted is not None
    assert secret not in row.webhook_secret_encrypted
    assert decrypt(row.webhook_secret_encrypted, KEY) == secret
    again = cli.invoke(app, ["jobs", "webhook", job_id])
    assert secret not in again.output


def test_a_job_of_another_type_or_none_is_refused(cli: CliRunner) -> None:
    plain = seeded("GENERATE_CONTENT")

    other = cli.invoke(app, ["jobs", "webhook", plain, "--renew-secret"])
    assert other.exit_code == 2
    assert "only a WEBHOOK job delivers" in other.output
    assert stored(plain).webhook_secret_encrypted is None
    missing = cli.invoke(app, ["jobs", "webhook", "cron_missing"])
    assert missing.exit_code == 1 and "no job cron_missing" in missing.output
