"""`herald installations grant|revoke|list` on the real database, as an operator runs them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.cli import app
from services.standalone.transfer import import_records
from shared.accounts import ensure_user
from shared.db.engine import create_engine, session_factory
from shared.db.schema import GitHubInstallation, GitHubInstallationGrant, Project, User
from shared.settings import get_settings
from tests.support import factories

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def cli(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("HERALD_GITHUB_APP_ID", "12345")
    monkeypatch.delenv("HERALD_GITHUB_API_URL", raising=False)
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


def user(email: str) -> str:
    async def work(sessions: Sessions) -> str:
        async with sessions() as session, session.begin():
            return (await ensure_user(session, email=email)).id

    return run(work)


def project(user_id: str, **fields: object) -> str:
    async def work(sessions: Sessions) -> str:
        values = {"github_repo_owner": "acme", "github_repo_name": "site", **fields}
        return (await factories.project(sessions, user_id, **values)).id

    return run(work)


def installation_of(project_id: str) -> int | None:
    async def work(sessions: Sessions) -> int | None:
        async with sessions() as session:
            return await session.scalar(
                select(Project.github_installation_id).where(Project.id == project_id)
            )

    return run(work)


def grant_rows() -> list[tuple[int, str, str]]:
    async def work(sessions: Sessions) -> list[tuple[int, str, str]]:
        async with sessions() as session:
            rows = await session.execute(
                select(
                    GitHubInstallationGrant.installation_id,
                    GitHubInstallationGrant.user_id,
                    GitHubInstallationGrant.granted_by,
                ).order_by(GitHubInstallationGrant.installation_id)
            )
            return [(row[0], row[1], row[2]) for row in rows]

    return run(work)


def test_a_grant_lets_the_users_projects_connect_and_is_listed(cli: CliRunner) -> None:
    alice = user(ALICE)
    user(BOB)
    project_id = project(alice)

    granted = cli.invoke(
        app, ["installations", "grant", "--installation", "41002", "--email", "Alice@Example.com"]
    )
    again = cli.invoke(
        app, ["installations", "grant", "--installation", "41002", "--email", ALICE, "--by", "x"]
    )
    other = cli.invoke(
        app, ["installations", "grant", "--installation", "41003", "--email", BOB, "--by", "ops"]
    )
    connected = cli.invoke(app, ["projects", "connect", project_id, "--installation", "41002"])

    assert granted.exit_code == 0, granted.output
    assert granted.output == f"granted installation 41002 to {ALICE}\n"
    assert again.output == f"installation 41002 was granted to {ALICE} already\n"
    assert other.exit_code == 0, other.output
    assert connected.exit_code == 0, connected.output
    assert installation_of(project_id) == 41_002
    rows = grant_rows()
    assert [(row[0], row[2]) for row in rows][1] == (41_003, "ops")
    assert rows[0][:2] == (41_002, alice) and rows[0][2] not in ("", "x")  # the first one kept
    listed = [
        line.split("\t") for line in cli.invoke(app, ["installations", "list"]).output.splitlines()
    ]
    assert [(line[0], line[1], line[3]) for line in listed] == [
        ("41002", ALICE, rows[0][2]),
        ("41003", BOB, "ops"),
    ]
    by_email = cli.invoke(app, ["installations", "list", "--email", BOB]).output
    by_installation = cli.invoke(app, ["installations", "list", "--installation", "41002"]).output
    assert [line.split("\t")[0] for line in by_email.splitlines()] == ["41003"]
    assert [line.split("\t")[1] for line in by_installation.splitlines()] == [ALICE]


def test_revoking_takes_the_installation_off_that_users_projects_only(cli: CliRunner) -> None:
    alice, bob = user(ALICE), user(BOB)
    for email in (ALICE, BOB):
        cli.invoke(app, ["installations", "grant", "--installation", "41002", "--email", email])
    alices = [project(alice, github_installation_id=41_002, github_credential="app") for _ in "ab"]
    elsewhere = project(alice, github_installation_id=41_009)
    bobs = project(bob, github_installation_id=41_002)

    revoked = cli.invoke(
        app, ["installations", "revoke", "--installation", "41002", "--email", ALICE]
    )

    assert revoked.exit_code == 0, revoked.output
    assert revoked.output.splitlines() == [
        f"revoked installation 41002 from {ALICE}",
        *(f"{p}: no longer reads through installation 41002" for p in sorted(alices)),
    ]
    assert [installation_of(p) for p in alices] == [None, None]
    assert installation_of(elsewhere) == 41_009
    assert installation_of(bobs) == 41_002
    assert [(row[0], row[1]) for row in grant_rows()] == [(41_002, bob)]
    twice = cli.invoke(
        app, ["installations", "revoke", "--installation", "41002", "--email", ALICE]
    )
    assert twice.exit_code == 1
    assert f"{ALICE} holds no grant of installation 41002" in twice.output


def test_an_unknown_user_is_named_and_nothing_is_granted(cli: CliRunner) -> None:
    for command in ("grant", "revoke"):
        refused = cli.invoke(
            app, ["installations", command, "--installation", "7", "--email", "nobody@example.com"]
        )

        assert refused.exit_code == 1
        assert "no user has the email nobody@example.com" in refused.output
        assert "herald users create" in refused.output
    assert grant_rows() == []


@pytest.mark.parametrize("value", ["0", "abc", str(2**53 + 1)])
def test_a_bad_installation_id_is_refused_naming_the_option(cli: CliRunner, value: str) -> None:
    user(ALICE)

    refused = cli.invoke(app, ["installations", "grant", "--installation", value, "--email", ALICE])

    assert refused.exit_code == 2
    assert "--installation" in refused.output
    assert grant_rows() == []


def test_deleting_a_user_deletes_their_grants(cli: CliRunner) -> None:
    alice = user(ALICE)
    cli.invoke(app, ["installations", "grant", "--installation", "41002", "--email", ALICE])

    async def delete_alice(sessions: Sessions) -> None:
        async with sessions() as session, session.begin():
            await session.execute(delete(User).where(User.id == alice))

    run(delete_alice)

    assert grant_rows() == []


def test_a_revoke_clears_an_installation_even_without_its_grant_row(cli: CliRunner) -> None:
    # An import (or anything older than grants) can leave a project naming an installation
    # its owner holds no grant of: revoking still takes the project off it.
    alice = user(ALICE)
    stray = project(alice, github_installation_id=41_003, github_credential="app")

    revoked = cli.invoke(
        app, ["installations", "revoke", "--installation", "41003", "--email", ALICE]
    )

    assert revoked.exit_code == 0, revoked.output
    assert f"{stray}: no longer reads through installation 41003" in revoked.output
    assert installation_of(stray) is None


def test_an_imported_project_keeps_its_installation_only_where_granted(cli: CliRunner) -> None:
    user(ALICE), user(BOB)
    cli.invoke(app, ["installations", "grant", "--installation", "41004", "--email", ALICE])

    def exported(project_id: str, email: str) -> dict[str, object]:
        return {
            "email": email,
            "projects": [
                {
                    "id": project_id,
                    "name": project_id,
                    "github_repo_owner": "acme",
                    "github_repo_name": "site",
                    "github_installation_id": 41_004,
                    "github_credential": "app",
                    "jobs": [],
                }
            ],
        }

    document = {
        "format": "herald-export",
        "version": 1,
        "users": [exported("proj_granted", ALICE), exported("proj_stray", BOB)],
    }

    async def work(sessions: Sessions) -> None:
        await import_records(sessions, document)

    run(work)
    assert installation_of("proj_granted") == 41_004
    assert installation_of("proj_stray") is None


def test_show_says_what_githubs_app_events_said_and_who_holds_a_grant(cli: CliRunner) -> None:
    user(ALICE)
    unknown = cli.invoke(app, ["installations", "show", "--installation", "41009"])
    assert unknown.exit_code == 0, unknown.output
    assert "no App event received for it" in unknown.output
    assert "granted to   -" in unknown.output

    async def seed(sessions: Sessions) -> None:
        async with sessions() as session, session.begin():
            session.add(
                GitHubInstallation(
                    installation_id=41_009,
                    account_login="acme",
                    account_type="Organization",
                    repository_selection="selected",
                    repositories=["acme/site", "acme/docs"],
                    suspended_at=datetime(2026, 3, 2, tzinfo=UTC),
                    updated_at=datetime(2026, 3, 2, tzinfo=UTC),
                )
            )

    run(seed)
    cli.invoke(app, ["installations", "grant", "--installation", "41009", "--email", ALICE])

    shown = cli.invoke(app, ["installations", "show", "--installation", "41009"])

    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "installation 41009",
        "account      acme (Organization)",
        "status       suspended",
        "repositories acme/site, acme/docs",
        "updated      2026-03-02T00:00:00+00:00",
        f"granted to   {ALICE}",
    ]
