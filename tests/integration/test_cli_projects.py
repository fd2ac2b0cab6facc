"""`herald projects list|show|connect` on the real database, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.cli import app
from shared.db.engine import create_engine, session_factory
from shared.db.schema import GitHubDelivery, Project, PublishingCredential
from shared.secrets import decrypt, generate_key
from shared.settings import get_settings
from tests.support import factories

KEY = generate_key()
HOOK_URL = "https://hooks.example/herald/T0KEN?key=T0KEN"
TOKEN = "github_pat_11AAAAAAA0secret0project0token"
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
SEEN = {"limit": 12_500, "remaining": 12_400, "resetAt": "2030-01-01T00:00:00Z"}


@pytest.fixture
def cli(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("HERALD_SECRET_KEY", KEY)
    monkeypatch.setenv("HERALD_GITHUB_APP_ID", "12345")
    monkeypatch.delenv("HERALD_GITHUB_API_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def flat(output: str) -> str:
    """`output` without the box click's rich errors draw, its wrapped lines joined."""
    return " ".join(output.replace("│", " ").split())


def run(work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def seeded(**fields: Any) -> str:
    """A project on octo/hello that the latest scan saw read through the App; its id."""

    async def work(sessions: Sessions) -> str:
        user_id, _ = await factories.user_with_token(sessions)
        values = {
            "name": "hello",
            "github_repo_owner": "octo",
            "github_repo_name": "hello",
            "github_credential": "app",
            "github_rate_limit": SEEN,
            **fields,
        }
        return (await factories.project(sessions, user_id, **values)).id

    return run(work)


def stored(project_id: str) -> Project:
    async def work(sessions: Sessions) -> Project | None:
        async with sessions() as session:
            return await session.get(Project, project_id)

    project = run(work)
    assert project is not None
    return project


def every_stored_value() -> str:
    """Every column of every project as text, to look for a secret in clear."""

    async def work(sessions: Sessions) -> str:
        async with sessions() as session:
            rows = (await session.execute(text("SELECT * FROM projects"))).all()
        return repr(rows)

    return run(work)


def granted(project_id: str, installation_id: int) -> None:
    """Grant the project's owner the installation."""
    owner = stored(project_id).user_id
    run(lambda sessions: factories.grant_installation(sessions, owner, installation_id))


def test_an_installation_is_connected_replacing_the_token(cli: CliRunner) -> None:
    project_id = seeded(github_token_encrypted="an-old-ciphertext")
    granted(project_id, 41_002)

    connected = cli.invoke(app, ["projects", "connect", project_id, "--installation", "41002"])

    assert connected.exit_code == 0, connected.output
    assert "credential app (installation 41002)" in connected.output
    row = stored(project_id)
    assert (row.github_installation_id, row.github_token_encrypted) == (41_002, None)
    # A changed credential forgets what the last scan said of the previous one.
    assert (row.github_credential, row.github_rate_limit) == (None, None)
    shown = cli.invoke(app, ["projects", "show", project_id]).output
    assert "credential   app" in shown and "installation 41002" in shown


def test_a_token_from_stdin_is_stored_encrypted_and_never_shown(cli: CliRunner) -> None:
    project_id = seeded(github_installation_id=7)

    connected = cli.invoke(
        app, ["projects", "connect", project_id, "--token-stdin"], input=f"{TOKEN}\n"
    )

    assert connected.exit_code == 0, connected.output
    assert "credential token" in connected.output
    row = stored(project_id)
    assert row.github_installation_id is None
    assert row.github_token_encrypted is not None
    assert decrypt(row.github_token_encrypted, KEY) == TOKEN  # the newline left out
    assert TOKEN not in every_stored_value()
    shown = cli.invoke(app, ["projects", "show", project_id])
    as_json = cli.invoke(app, ["projects", "show", project_id, "--json"])
    listed = cli.invoke(app, ["projects", "list"])
    for output in (connected.output, shown.output, as_json.output, listed.output):
        assert TOKEN not in output
        assert row.github_token_encrypted not in output
    assert "token        set" in shown.output
    view = json.loads(as_json.output)
    assert (view["githubTokenSet"], view["githubCredential"]) == (True, "token")


def test_global_forgets_the_projects_own_credential(cli: CliRunner) -> None:
    project_id = seeded(github_installation_id=7, github_token_encrypted="a-ciphertext")
    [before] = cli.invoke(app, ["projects", "list"]).output.splitlines()
    assert before.split("\t") == [project_id, "hello", "octo/hello", "app", "12400/12500"]

    connected = cli.invoke(app, ["projects", "connect", project_id, "--global"])

    assert connected.exit_code == 0, connected.output
    row = stored(project_id)
    assert (row.github_installation_id, row.github_token_encrypted) == (None, None)
    [after] = cli.invoke(app, ["projects", "list"]).output.splitlines()
    assert after.split("\t") == [project_id, "hello", "octo/hello", "global", "-"]


def test_list_shows_where_each_project_reads_and_filters_by_owner(cli: CliRunner) -> None:
    github = seeded()
    enterprise = seeded(
        name="ghe", github_base_url="https://ghe.example.com/api/v3", github_credential=None
    )
    local = seeded(
        name="local",
        github_repo_owner=None,
        github_repo_name=None,
        local_repo_path="site",
        github_credential=None,
        github_rate_limit=None,
    )

    rows = [row.split("\t") for row in cli.invoke(app, ["projects", "list"]).output.splitlines()]

    assert [row[0] for row in rows] == [github, enterprise, local]
    assert rows[1][2:4] == ["octo/hello on ghe.example.com", "global"]
    assert rows[2][2:] == ["local:site", "-", "-"]
    nobody = cli.invoke(app, ["projects", "list", "--email", "nobody@example.com"])
    assert (nobody.exit_code, nobody.output) == (0, "")


def test_an_unknown_project_is_named(cli: CliRunner) -> None:
    for args in (
        ["show", "prj_nope"],
        ["connect", "prj_nope", "--global"],
        ["deliveries", "prj_nope"],
    ):
        refused = cli.invoke(app, ["projects", *args])

        assert refused.exit_code == 1
        assert "no project prj_nope" in refused.output


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("0", "greater than or equal to 1"),
        (str(2**53 + 1), "less than or equal to"),
        ("abc", "valid integer"),
    ],
)
def test_a_bad_installation_id_is_refused_naming_the_option(
    cli: CliRunner, value: str, rule: str
) -> None:
    project_id = seeded(github_token_encrypted="kept")

    refused = cli.invoke(app, ["projects", "connect", project_id, "--installation", value])

    assert refused.exit_code == 2, refused.output
    assert "--installation" in flat(refused.output) and rule in flat(refused.output)
    assert stored(project_id).github_token_encrypted == "kept"


def test_an_installation_is_refused_where_the_app_cannot_read(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    enterprise = seeded(github_base_url="https://ghe.example.com/api/v3")
    off_github = cli.invoke(app, ["projects", "connect", enterprise, "--installation", "7"])
    assert off_github.exit_code == 2
    assert "--installation" in off_github.output
    assert "reads only https://api.github.com" in off_github.output

    monkeypatch.delenv("HERALD_GITHUB_APP_ID")
    get_settings.cache_clear()
    project_id = seeded()
    no_app = cli.invoke(app, ["projects", "connect", project_id, "--installation", "7"])
    assert no_app.exit_code == 2
    assert "--installation" in no_app.output and "HERALD_GITHUB_APP_ID" in no_app.output
    assert stored(project_id).github_installation_id is None


def test_an_installation_not_granted_to_the_owner_is_refused(cli: CliRunner) -> None:
    project_id = seeded(github_token_encrypted="kept")
    someone_else = seeded()
    granted(someone_else, 41_002)

    refused = cli.invoke(app, ["projects", "connect", project_id, "--installation", "41002"])

    assert refused.exit_code == 2, refused.output
    assert flat(refused.output) == (
        "error: --installation: installation 41002 is not granted to this account; an "
        "operator grants it with `herald installations grant`"
    )
    row = stored(project_id)
    assert (row.github_installation_id, row.github_token_encrypted) == (None, "kept")


@pytest.mark.parametrize("stdin", ["", "\n", "  \n\n"])
def test_an_empty_token_is_refused(cli: CliRunner, stdin: str) -> None:
    project_id = seeded(github_token_encrypted="kept")

    refused = cli.invoke(app, ["projects", "connect", project_id, "--token-stdin"], input=stdin)

    assert refused.exit_code == 2
    assert "--token-stdin" in refused.output and "no token" in refused.output
    assert stored(project_id).github_token_encrypted == "kept"


def test_a_token_breaking_the_apis_rule_is_refused_without_being_echoed(cli: CliRunner) -> None:
    project_id = seeded()
    secret = "ghp_half a token"

    refused = cli.invoke(app, ["projects", "connect", project_id, "--token-stdin"], input=secret)

    assert refused.exit_code == 2
    assert "--token-stdin" in refused.output and "pattern" in refused.output
    assert "half" not in refused.output
    assert stored(project_id).github_token_encrypted is None


def test_a_token_without_a_secret_key_names_the_setting_and_changes_nothing(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = seeded(github_installation_id=7)
    monkeypatch.delenv("HERALD_SECRET_KEY")
    get_settings.cache_clear()

    refused = cli.invoke(app, ["projects", "connect", project_id, "--token-stdin"], input=TOKEN)

    assert refused.exit_code == 1
    assert "HERALD_SECRET_KEY is not set" in refused.output
    assert TOKEN not in refused.output
    row = stored(project_id)
    assert (row.github_installation_id, row.github_token_encrypted) == (7, None)
    # Storing no secret needs no key.
    cleared = cli.invoke(app, ["projects", "connect", project_id, "--global"])
    assert cleared.exit_code == 0, cleared.output
    assert stored(project_id).github_installation_id is None


@pytest.mark.parametrize(
    "options",
    [[], ["--global", "--installation", "7"], ["--token-stdin", "--global"]],
)
def test_exactly_one_credential_is_given(cli: CliRunner, options: list[str]) -> None:
    project_id = seeded()

    refused = cli.invoke(app, ["projects", "connect", project_id, *options], input=TOKEN)

    assert refused.exit_code == 2
    assert "exactly one of --installation, --token-stdin, --global" in refused.output


def test_deliveries_lists_what_each_delivery_came_to_newest_first(cli: CliRunner) -> None:
    project_id = seeded()
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)

    async def work(sessions: Sessions) -> None:
        async with sessions() as session, session.begin():
            session.add_all(
                [
                    GitHubDelivery(
                        project_id=project_id,
                        delivery_id="aaaa-1",
                        event="release",
                        action="published",
                        received_at=at,
                        outcome="started",
                        executions={
                            "started": [{"jobId": "cron_1", "executionId": "exec_1"}],
                            "skipped": [],
                        },
                        redeliveries=2,
                        last_redelivered_at=at + timedelta(hours=1),
                    ),
                    GitHubDelivery(
                        project_id=project_id,
                        delivery_id="bbbb-2",
                        event="push",
                        received_at=at + timedelta(minutes=5),
                        outcome="ignored",
                        reason="no enabled job has a webhook trigger this push delivery matches",
                    ),
                ]
            )

    run(work)

    listed = cli.invoke(app, ["projects", "deliveries", project_id])

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines == [
        "2026-03-02T10:05:00Z\tbbbb-2\tpush\tignored: no enabled job has a webhook trigger "
        "this push delivery matches",
        "2026-03-02T10:00:00Z\taaaa-1\trelease/published\tstarted exec_1\t(sent again 2x)",
    ]
    one = cli.invoke(app, ["projects", "deliveries", project_id, "--limit", "1", "--json"])
    assert one.exit_code == 0, one.output
    [shown] = json.loads(one.output)
    assert (shown["deliveryId"], shown["outcome"]) == ("bbbb-2", "ignored")


def test_publishing_is_set_shown_and_removed_with_the_apis_rules(
    cli: CliRunner, tmp_path: Path
) -> None:
    project_id = seeded()
    refused = cli.invoke(
        app,
        [
            "projects",
            "publishing",
            "set",
            project_id,
            "mastodon",
            "--instance",
            "https://127.0.0.1:3000",
            "--secret-stdin",
        ],
        input="mastodon-secret-token\n",
    )
    assert refused.exit_code == 2
    assert "error: --instance: must not point to a loopback address" in flat(refused.output)

    saved = cli.invoke(
        app,
        [
            "projects",
            "publishing",
            "set",
            project_id,
            "mastodon",
            "--instance",
            "https://mastodon.example",
            "--secret-stdin",
        ],
        input="mastodon-secret-token\n",
    )
    assert saved.exit_code == 0, saved.output
    webhook = cli.invoke(
        app,
        [
            "projects",
            "publishing",
            "set",
            project_id,
            "webhook",
            "--url",
            HOOK_URL,
        ],
    )
    assert webhook.exit_code == 0, webhook.output
    assert "signing secret (shown this once): " in webhook.output
    assert "T0KEN" not in webhook.output

    shown = cli.invoke(app, ["projects", "publishing", "show", project_id])
    assert shown.exit_code == 0, shown.output
    assert "mastodon  set (instanceUrl https://mastodon.example)" in shown.output
    assert "webhook   set (urlHost hooks.example)" in shown.output
    assert "bluesky   not set" in shown.output
    assert "mastodon-secret-token" not in shown.output
    assert "T0KEN" not in shown.output

    out = tmp_path / "export.json"
    exported = cli.invoke(app, ["export", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "T0KEN" not in out.read_text()

    async def sealed(sessions: Sessions) -> str:
        async with sessions() as session:
            row = await session.get(PublishingCredential, (project_id, "mastodon"))
            assert row is not None
            return row.secret_encrypted

    assert decrypt(run(sealed), KEY) == "mastodon-secret-token"
    removed = cli.invoke(app, ["projects", "publishing", "remove", project_id, "mastodon"])
    assert removed.exit_code == 0, removed.output
    again = cli.invoke(app, ["projects", "publishing", "show", project_id])
    assert "mastodon  not set" in again.output


def test_an_export_from_before_sealed_webhook_urls_is_sealed_on_import(
    cli: CliRunner, tmp_path: Path
) -> None:
    document = {
        "format": "herald-export",
        "version": 1,
        "users": [
            {
                "email": "old@example.test",
                "projects": [
                    {
                        "id": "proj_old_export",
                        "name": "old",
                        "platforms": ["blog"],
                        "jobs": [],
                        "publishing": [
                            {
                                "network": "webhook",
                                "settings": {"url": HOOK_URL},
                                "secret_encrypted": "sealed-signing-secret",
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "old-export.json"
    path.write_text(json.dumps(document))
    imported = cli.invoke(app, ["import", str(path)])
    assert imported.exit_code == 0, imported.output

    async def stored(sessions: Sessions) -> PublishingCredential | None:
        async with sessions() as session:
            return await session.get(PublishingCredential, ("proj_old_export", "webhook"))

    row = run(stored)
    assert row is not None and row.url_encrypted is not None
    assert row.settings == {"urlHost": "hooks.example"}
    assert decrypt(row.url_encrypted, KEY) == HOOK_URL
    shown = cli.invoke(app, ["projects", "publishing", "show", "proj_old_export"])
    assert "T0KEN" not in shown.output
