"""The standalone mode's files: foreign or newer databases refused untouched; queues durable."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from services.standalone.datafile import DataFileError, check_database, data_files
from services.standalone.queuestore import QueueStore, StoredMessage
from shared.db.filelock import DatabaseInUseError, hold_lock
from shared.db.migrate import upgrade
from shared.settings import Settings
from tests.standalone.conftest import HERALD, SERVER_SETTINGS


def sqlite_file(path: Path, *statements: str) -> Path:
    connection = sqlite3.connect(path)
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


def test_a_new_or_empty_file_and_a_herald_database_are_accepted(tmp_path: Path) -> None:
    check_database(tmp_path / "absent.db")
    check_database(sqlite_file(tmp_path / "empty.db"))
    herald = tmp_path / "herald.db"
    upgrade(f"sqlite:///{herald}")
    check_database(herald)


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (("CREATE TABLE invoices (id INTEGER)",), "no herald schema version"),
        (
            (
                "CREATE TABLE alembic_version (version_num VARCHAR(32))",
                "INSERT INTO alembic_version VALUES ('9f2c1e')",
            ),
            "schema revision 9f2c1e, which this herald does not know",
        ),
    ],
    ids=["another application's", "a newer or foreign revision"],
)
def test_a_database_that_is_not_herald_is_refused_and_left_byte_for_byte(
    tmp_path: Path, statements: tuple[str, ...], message: str
) -> None:
    path = sqlite_file(tmp_path / "other.db", *statements)
    before = path.read_bytes()
    with pytest.raises(DataFileError, match=message):
        check_database(path)
    assert path.read_bytes() == before


def test_a_herald_database_migrated_by_a_newer_herald_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "herald.db"
    upgrade(f"sqlite:///{path}")
    sqlite_file(path, "UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(DataFileError, match="comes from a newer herald"):
        check_database(path)


def test_foreign_tables_beside_herald_schema_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "herald.db"
    upgrade(f"sqlite:///{path}")
    sqlite_file(path, "CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(DataFileError, match=r"tables herald does not own \(invoices\)"):
        check_database(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "herald.db"
    path.write_text("notes\n" * 200)
    with pytest.raises(DataFileError, match="SQLite cannot read it"):
        check_database(path)
    assert path.read_text() == "notes\n" * 200


def test_the_data_files_follow_the_settings(tmp_path: Path) -> None:
    files = data_files(Settings(data_dir=str(tmp_path / "data")))
    assert files.database == tmp_path / "data" / "herald.db"
    assert files.queues == tmp_path / "data" / "herald.queues.db"
    own = data_files(Settings(database_url=f"sqlite:///{tmp_path}/mine.db"))
    assert own.database == tmp_path / "mine.db"
    assert own.url == f"sqlite:///{tmp_path}/mine.db"


def test_one_process_holds_a_database_file_at_a_time(tmp_path: Path) -> None:
    database = tmp_path / "herald.db"
    held = hold_lock(database)
    try:
        with pytest.raises(DatabaseInUseError, match="in use by another herald process"):
            hold_lock(database)
    finally:
        held.release()
    hold_lock(database).release()  # free again once released


async def test_unacked_messages_survive_closing_the_store_and_dead_letters_stay_apart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "queues.db"
    store = QueueStore(path)
    assert await store.open() == []
    acked, unacked, poison = (
        StoredMessage(queue="herald.scanner", routing_key="job.due", body=b"{}", message_id=m)
        for m in ("m1", "m2", "m3")
    )
    await store.add([acked, unacked, poison])
    await store.remove(acked)
    await store.dead_letter(poison, "herald.scanner.dlq", "kept failing")
    await store.close()

    reopened = QueueStore(path)
    pending = await reopened.open()
    assert [message.message_id for message in pending] == ["m2"]
    dead = await reopened.dead_letters("herald.scanner.dlq")
    assert [(message.message_id, message.dead_reason) for message in dead] == [
        ("m3", "kept failing")
    ]
    await reopened.close()


async def test_herald_dlq_list_shows_the_standalone_dead_letters_with_their_reason(
    tmp_path: Path,
) -> None:
    store = QueueStore(tmp_path / "herald.queues.db")
    await store.open()
    poison = StoredMessage(
        queue="herald.generator",
        routing_key="activity.scanned",
        body=b'{"executionId": "exec_42"}',
        message_id="m-42",
    )
    await store.add([poison])
    await store.dead_letter(
        poison, "herald.generator.dlq", "dead-lettered after 6 failed deliveries"
    )
    await store.close()
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    result = subprocess.run(
        [HERALD, "dlq", "list", "--standalone", "--queue", "herald.generator"],
        env={**env, "HERALD_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "herald.generator.dlq  m-42  activity.scanned" in result.stdout
    assert "reason=dead-lettered after 6 failed deliveries  execution=exec_42" in result.stdout
