"""`herald tokens create|list|revoke` and `herald export` on the real database, as an
operator runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.db.engine import create_engine, session_factory
from shared.settings import get_settings
from tests.support import factories


@pytest.fixture
def cli(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_an_operator_lists_and_revokes_a_users_tokens(cli: CliRunner) -> None:
    created = cli.invoke(
        app, ["tokens", "create", "--email", "Ada@Example.com", "--name", "ci", "--create-user"]
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip()
    assert secret.startswith("hrld_")

    listed = cli.invoke(app, ["tokens", "list", "--email", "ada@example.com"])
    assert listed.exit_code == 0, listed.output
    [row] = listed.output.splitlines()
    token_id, prefix, name, _created, state = row.split("\t")
    assert (prefix, name, state) == (f"{secret[:12]}…", "ci", "live")
    assert secret not in listed.output

    revoked = cli.invoke(app, ["tokens", "revoke", token_id])
    assert revoked.exit_code == 0, revoked.output
    [row] = cli.invoke(app, ["tokens", "list", "--email", "ada@example.com"]).output.splitlines()
    assert row.split("\t")[-1] != "live"

    unknown = cli.invoke(app, ["tokens", "revoke", "tok_nope"])
    assert unknown.exit_code == 1
    assert "no token tok_nope" in unknown.output


def test_a_token_for_an_unknown_email_is_refused_unless_the_user_is_to_be_created(
    cli: CliRunner,
) -> None:
    typo = cli.invoke(app, ["tokens", "create", "--email", "ada@exmaple.com"])
    assert typo.exit_code == 1
    assert "no user has the email ada@exmaple.com" in typo.output
    assert "--create-user" in typo.output
    # Nothing was created by the refused call: listing knows no such user's tokens.
    assert cli.invoke(app, ["tokens", "list", "--email", "ada@exmaple.com"]).output.strip() == ""

    # The positive control: a user that exists gets a token without the flag.
    assert cli.invoke(app, ["users", "create", "--email", "grace@example.com"]).exit_code == 0
    created = cli.invoke(app, ["tokens", "create", "--email", "Grace@Example.com"])
    assert created.exit_code == 0, created.output
    assert created.output.strip().startswith("hrld_")


def test_export_reads_the_configured_database_without_being_told(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine that ran the distributed mode: DATABASE_URL set, no standalone file.
    monkeypatch.setenv("HERALD_DATA_DIR", str(tmp_path / "no-standalone-here"))
    get_settings.cache_clear()

    async def seed() -> None:
        engine = create_engine(get_settings().database_url)
        try:
            sessions = session_factory(engine)
            user_id, _ = await factories.user_with_token(sessions)
            await factories.project(sessions, user_id, name="exported")
        finally:
            await engine.dispose()

    asyncio.run(seed())
    out = tmp_path / "herald.json"
    exported = cli.invoke(app, ["export", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    document = json.loads(out.read_text())
    assert document["format"] == "herald-export"
    projects = [project["name"] for user in document["users"] for project in user["projects"]]
    assert projects == ["exported"]


def test_export_with_no_database_named_and_no_standalone_file_says_so(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("HERALD_DATABASE_URL", raising=False)
    monkeypatch.setenv("HERALD_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    refused = cli.invoke(app, ["export"])
    assert refused.exit_code == 2
    assert "nothing to export: DATABASE_URL is not set" in refused.output
