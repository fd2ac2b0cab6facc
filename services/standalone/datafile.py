"""The standalone mode's data: where its files live, and refusing a file that is not herald's.

A database file is only ever migrated forward by the code that knows its schema: a file of
another application, or one a newer herald has migrated, is refused before anything writes
to it (the check opens it read-only).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory

from shared.db.engine import is_sqlite
from shared.db.filelock import database_path
from shared.db.migrate import alembic_config
from shared.db.schema import Base
from shared.settings import Settings

DATABASE_NAME = "herald.db"
# Tables SQLite itself creates beside ours.
_SQLITE_TABLES = {"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}


class DataFileError(RuntimeError):
    """A database file the standalone mode refuses to use."""


@dataclass(frozen=True)
class DataFiles:
    database: Path
    queues: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def demo_token(self) -> Path:
        """Where the demo's token is kept for later starts to show (see `services.demo_token`)."""
        return self.database.with_name(self.database.stem + ".demo-token")


def data_files(settings: Settings) -> DataFiles:
    """The database (DATABASE_URL when it is a SQLite file, else under `data_dir`) and queues."""
    database = database_path(settings.database_url) if is_sqlite(settings.database_url) else None
    if database is None:
        database = (Path(settings.data_dir) / DATABASE_NAME).resolve()
    return DataFiles(database=database, queues=database.with_name(database.stem + ".queues.db"))


def check_database(path: Path) -> None:
    """Refuse a file that is not a herald database or whose schema is newer than this code."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        tables, revisions = _read(path)
    except sqlite3.DatabaseError as exc:
        raise DataFileError(
            f"{path} is not a herald database (SQLite cannot read it: {exc}). "
            "herald leaves it untouched; point HERALD_DATA_DIR or DATABASE_URL elsewhere."
        ) from None
    if not tables:
        return  # an empty SQLite file: nothing to keep
    if revisions is None:
        raise DataFileError(
            f"{path} is not a herald database: it holds tables ({_names(tables)}) but no "
            "herald schema version. herald leaves it untouched; point HERALD_DATA_DIR or "
            "DATABASE_URL elsewhere."
        )
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [revision for revision in revisions if revision not in known]
    if unknown:
        raise DataFileError(
            f"{path} is at schema revision {', '.join(unknown)}, which this herald does not know "
            f"(it knows up to {script.get_current_head()}): the file comes from a newer herald or "
            "another application. herald leaves it untouched; upgrade herald, or point "
            "HERALD_DATA_DIR or DATABASE_URL elsewhere."
        )
    foreign = tables - set(Base.metadata.tables) - _SQLITE_TABLES - {"alembic_version"}
    if foreign:
        raise DataFileError(
            f"{path} holds tables herald does not own ({_names(foreign)}): it is not a herald "
            "database. herald leaves it untouched; point HERALD_DATA_DIR or DATABASE_URL "
            "elsewhere."
        )


def _read(path: Path) -> tuple[set[str], list[str] | None]:
    """Return the file's tables and its Alembic revisions (None without a version table)."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "alembic_version" not in tables:
            return tables, None
        revisions = [
            row[0] for row in connection.execute("SELECT version_num FROM alembic_version")
        ]
        return tables, revisions
    finally:
        connection.close()


def _names(tables: set[str]) -> str:
    shown = sorted(tables)[:5]
    return ", ".join(shown) + (", ..." if len(tables) > len(shown) else "")
