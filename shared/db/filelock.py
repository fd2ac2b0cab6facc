"""One process per SQLite database file: an OS lock on a file beside it.

SQLite has no `SKIP LOCKED` and no session that other processes can see, so the standalone
mode keeps a single scheduler (and a single consumer of its in-process queues) by holding an
exclusive `flock` for its lifetime. The OS releases it when the process dies, even by
SIGKILL, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class DatabaseInUseError(RuntimeError):
    """Another herald process holds this database file."""


def database_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class DatabaseLock:
    """An exclusive lock held until `release` (or until the process ends)."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        self._descriptor = None


def hold_lock(database: Path) -> DatabaseLock:
    """Take the lock of `database`, or raise DatabaseInUseError naming the holder's pid."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise DatabaseInUseError(
            f"{database} is in use by another herald process (pid {holder}); "
            "stop it first: one process per database file in standalone mode"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return DatabaseLock(path, descriptor)


def hold_database_lock(url: str) -> DatabaseLock | None:
    """Take the lock of a SQLite URL's file; None for an in-memory database (nothing shared)."""
    database = database_path(url)
    return hold_lock(database) if database is not None else None
