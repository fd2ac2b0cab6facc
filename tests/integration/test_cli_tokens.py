"""`herald tokens create|list|revoke` on the real database, as an operator runs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.settings import get_settings


@pytest.fixture
def cli(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_an_operator_lists_and_revokes_a_users_tokens(cli: CliRunner) -> None:
    created = cli.invoke(app, ["tokens", "create", "--email", "Ada@Example.com", "--name", "ci"])
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
