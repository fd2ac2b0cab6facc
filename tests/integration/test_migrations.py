"""The migrations build the schema the models declare, and carry existing rows forward."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.api.triggers import trigger_manually
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import alembic_config, upgrade
from shared.db.schema import Base, Content, CronJob, Project
from shared.secrets import decrypt, generate_key
from tests.support import factories, servers


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """An empty database (no template: the migrations are what is tested)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = servers.base_database_url()
    name = servers.unique_name("herald_m")
    yield asyncio.run(servers.create_database(base, name))
    asyncio.run(servers.drop_database(base, name))


def _compare(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, Base.metadata))


async def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_compare)
    finally:
        await engine.dispose()


async def _run(url: str, statements: list[tuple[str, dict[str, object]]]) -> list[sa.Row[object]]:
    """Run the statements in one transaction; return the last one's rows."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = None
            for statement, params in statements:
                result = await connection.execute(sa.text(statement), params)
            assert result is not None
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


def test_migrated_schema_is_the_models_schema(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    assert asyncio.run(_differences(empty_database_url)) == []


def test_statistics_rows_learn_their_owner_and_liveness(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0004")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    seed: list[tuple[str, dict[str, object]]] = [
        (
            "INSERT INTO users (id, email, name, timezone, created_at)"
            " VALUES ('u1', 'a@example.test', 'A', 'UTC', :t)",
            {"t": at},
        ),
        (
            "INSERT INTO projects (id, user_id, name, github_repo_owner, github_repo_name,"
            " platforms, notification_settings, created_at, updated_at)"
            " VALUES ('p1', 'u1', 'p', 'o', 'r', '[]', '{}', :t, :t)",
            {"t": at},
        ),
    ]
    for job_id, deleted in (("live_job", None), ("gone_job", at)):
        seed.append(
            (
                "INSERT INTO cron_jobs (id, project_id, user_id, type, name, frequency,"
                " time_config, schedule, is_enabled, max_retries, retry_delay, timeout_seconds,"
                " overlap_policy, catchup_window, jitter, created_at, updated_at, deleted_at)"
                " VALUES (:id, 'p1', 'u1', 'GENERATE_CONTENT', 'j', 'DAILY', '{}', '0 9 * * *',"
                " true, 3, 300, 900, 'SKIP', 86400, 0, :t, :t, :deleted)",
                {"id": job_id, "t": at, "deleted": deleted},
            )
        )
        seed.append(
            (
                "INSERT INTO job_statistics (job_id, total_success, total_failures,"
                " total_cancelled, total_skipped, total_missed, total_duration_ms, timed_runs,"
                " consecutive_failures, recent_durations, updated_at)"
                " VALUES (:id, 1, 0, 0, 0, 0, 10, 1, 0, '[]', :t)",
                {"id": job_id, "t": at},
            )
        )
    asyncio.run(_run(empty_database_url, seed))

    upgrade(empty_database_url)

    rows = asyncio.run(
        _run(
            empty_database_url,
            [("SELECT job_id, user_id, live FROM job_statistics ORDER BY job_id", {})],
        )
    )
    assert [(job_id, user_id, bool(live)) for job_id, user_id, live in rows] == [
        ("gone_job", "u1", False),
        ("live_job", "u1", True),
    ]


def test_only_the_owners_own_listed_address_starts_confirmed(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0006")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    settings = (
        '{"recipients": ["Ada@Example.test", "stranger@example.test"], "failureThreshold": 2}'
    )
    asyncio.run(
        _run(
            empty_database_url,
            [
                (
                    "INSERT INTO users (id, email, name, timezone, created_at)"
                    " VALUES ('u1', 'ada@example.test', 'A', 'UTC', :t)",
                    {"t": at},
                ),
                (
                    "INSERT INTO projects (id, user_id, name, platforms, notification_settings,"
                    " created_at, updated_at) VALUES ('p1', 'u1', 'p', '[]', :s, :t, :t),"
                    " ('p2', 'u1', 'q', '[]', '{}', :t, :t)",
                    {"t": at, "s": settings},
                ),
            ],
        )
    )

    upgrade(empty_database_url)

    rows = asyncio.run(
        _run(
            empty_database_url,
            [("SELECT id, notification_settings FROM projects ORDER BY id", {})],
        )
    )
    stored = {
        project_id: value if isinstance(value, dict) else json.loads(value)
        for project_id, value in rows
    }
    assert stored["p1"]["confirmedRecipients"] == ["Ada@Example.test"]
    assert stored["p1"]["recipients"] == ["Ada@Example.test", "stranger@example.test"]
    assert stored["p1"]["failureThreshold"] == 2
    assert stored["p2"]["confirmedRecipients"] == []


def test_stored_alerts_count_once_and_only_new_ones_collapse(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0007")
    at = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    insert_alert = (
        "INSERT INTO notifications (id, user_id, execution_id, kind, title, body, created_at)"
        " VALUES (:id, 'u1', :execution, 'job_success', 't', 'b', :t)"
    )
    asyncio.run(
        _run(
            empty_database_url,
            [
                (
                    "INSERT INTO users (id, email, name, timezone, created_at)"
                    " VALUES ('u1', 'ada@example.test', 'A', 'UTC', :t)",
                    {"t": at},
                ),
                # Two unread alerts of one job's runs, stored before alerts collapsed.
                (insert_alert, {"id": "n1", "execution": "e1", "t": at}),
                (insert_alert, {"id": "n2", "execution": "e2", "t": at}),
            ],
        )
    )

    upgrade(empty_database_url)

    rows = asyncio.run(
        _run(
            empty_database_url,
            [("SELECT id, job_id, count, first_at FROM notifications ORDER BY id", {})],
        )
    )
    assert [(row[0], row[1], row[2]) for row in rows] == [("n1", None, 1), ("n2", None, 1)]
    assert all(row[3] is not None for row in rows)
    # From now on, a second unread alert of one job and kind cannot be inserted beside one.
    new_alert = (
        "INSERT INTO notifications (id, user_id, execution_id, job_id, kind, title, body,"
        " count, first_at, created_at)"
        " VALUES (:id, 'u1', :id, 'j1', 'job_success', 't', 'b', 1, :t, :t)"
    )
    asyncio.run(_run(empty_database_url, [(new_alert, {"id": "n3", "t": at})]))
    with pytest.raises(sa.exc.IntegrityError):
        asyncio.run(_run(empty_database_url, [(new_alert, {"id": "n4", "t": at})]))


def test_installations_named_before_grants_existed_are_not_kept(empty_database_url: str) -> None:
    """Any caller could name any installation until 0011: none stored then proves ownership."""
    upgrade(empty_database_url, "0010")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    asyncio.run(
        _run(
            empty_database_url,
            [
                (
                    "INSERT INTO users (id, email, name, timezone, created_at)"
                    " VALUES ('u1', 'ada@example.test', 'A', 'UTC', :t)",
                    {"t": at},
                ),
                (
                    "INSERT INTO projects (id, user_id, name, platforms, notification_settings,"
                    " github_installation_id, github_token_encrypted, github_credential,"
                    " created_at, updated_at) VALUES"
                    " ('p1', 'u1', 'p', '[]', '{}', 41002, NULL, 'app', :t, :t),"
                    " ('p2', 'u1', 'q', '[]', '{}', NULL, 'ciphertext', 'token', :t, :t)",
                    {"t": at},
                ),
            ],
        )
    )

    upgrade(empty_database_url)

    rows = asyncio.run(
        _run(
            empty_database_url,
            [
                (
                    "SELECT id, github_installation_id, github_token_encrypted,"
                    " github_credential FROM projects ORDER BY id",
                    {},
                )
            ],
        )
    )
    assert [tuple(row) for row in rows] == [
        ("p1", None, None, None),
        ("p2", None, "ciphertext", "token"),
    ]
    grants = asyncio.run(
        _run(empty_database_url, [("SELECT * FROM github_installation_grants", {})])
    )
    assert grants == []


def test_downgrades_keep_every_record(empty_database_url: str) -> None:
    """Each downgrade drops its own columns and tables, never rows of the tables it alters.

    SQLite drops a column by copying its table when asked through a batch: the copy's DROP of
    the old table cascades (foreign keys are on) and empties every table that references it.
    """
    upgrade(empty_database_url)

    async def seed() -> None:
        engine = create_engine(empty_database_url)
        try:
            sessions = session_factory(engine)
            user_id, _ = await factories.user_with_token(sessions)
            project = await factories.project(sessions, user_id)
            job = await factories.job(sessions, project, next_run_at=None)
            async with sessions() as session, session.begin():
                execution = await trigger_manually(
                    session,
                    job=await session.get(CronJob, job.id),
                    project=await session.get(Project, project.id),
                    user_id=user_id,
                )
                session.add(
                    Content(
                        id="cnt_kept",
                        execution_id=execution.id,
                        platform="x",
                        body="kept",
                        status="GENERATED",
                        state="DRAFT",
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(seed())
    counted = "SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM cron_jobs),"
    counted += " (SELECT count(*) FROM cron_executions), (SELECT count(*) FROM contents)"
    config = alembic_config(empty_database_url)
    for revision in DOWNGRADES:
        command.downgrade(config, revision)
        rows = asyncio.run(_run(empty_database_url, [(counted, {})]))
        assert tuple(rows[0]) == (1, 1, 1, 1), f"rows lost going down to {revision}"


# Down to the revision before each migration that alters a table others reference.
DOWNGRADES = [
    "0022",
    "0021",
    "0020",
    "0019",
    "0017",
    "0016",
    "0015",
    "0014",
    "0013",
    "0012",
    "0009",
]


def test_a_publishing_webhooks_url_is_sealed_and_unsealed_again(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0022 moves a webhook's clear URL (its token in the query) into the encrypted column."""
    key = generate_key()
    monkeypatch.setenv("HERALD_SECRET_KEY", key)
    url = "https://hooks.example:8443/in/T0KEN?sig=s3cret"
    upgrade(empty_database_url, "0021")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    asyncio.run(
        _run(
            empty_database_url,
            [
                (
                    "INSERT INTO users (id, email, name, timezone, created_at)"
                    " VALUES ('u1', 'ada@example.test', 'A', 'UTC', :t)",
                    {"t": at},
                ),
                (
                    "INSERT INTO projects (id, user_id, name, platforms, notification_settings,"
                    " created_at, updated_at) VALUES ('p1', 'u1', 'p', '[]', '{}', :t, :t)",
                    {"t": at},
                ),
                (
                    "INSERT INTO publishing_credentials (project_id, network, settings,"
                    " secret_encrypted, created_at, updated_at) VALUES"
                    " ('p1', 'webhook', :hook, 'sealed-secret', :t, :t),"
                    " ('p1', 'mastodon', :instance, 'sealed-token', :t, :t)",
                    {
                        "t": at,
                        "hook": json.dumps({"url": url}),
                        "instance": json.dumps({"instanceUrl": "https://m.example"}),
                    },
                ),
            ],
        )
    )

    upgrade(empty_database_url)

    select = (
        "SELECT network, settings, url_encrypted FROM publishing_credentials ORDER BY network",
        {},
    )
    rows = asyncio.run(_run(empty_database_url, [select]))
    stored = {row[0]: (_json(row[1]), row[2]) for row in rows}
    assert stored["mastodon"] == ({"instanceUrl": "https://m.example"}, None)
    settings, sealed = stored["webhook"]
    assert settings == {"urlHost": "hooks.example:8443"}
    assert "T0KEN" not in sealed and decrypt(sealed, key) == url

    command.downgrade(alembic_config(empty_database_url), "0021")
    back = asyncio.run(
        _run(
            empty_database_url,
            [("SELECT settings FROM publishing_credentials WHERE network = 'webhook'", {})],
        )
    )
    assert _json(back[0][0]) == {"url": url}


def _json(value: object) -> dict[str, object]:
    return json.loads(value) if isinstance(value, str) else dict(value)  # type: ignore[call-overload]


def test_a_publish_runs_read_of_approved_posts_has_its_partial_index(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url)
    if empty_database_url.startswith("sqlite"):
        query = "SELECT sql FROM sqlite_master WHERE name = 'ix_contents_approved_unclaimed'"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_contents_approved_unclaimed'"
    ((definition,),) = asyncio.run(_run(empty_database_url, [(query, {})]))
    assert "project_id" in definition and "execution_id" in definition
    assert "APPROVED" in definition
    assert "publish_claimed_at IS NULL" in definition
