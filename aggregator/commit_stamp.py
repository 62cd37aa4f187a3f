"""A stamp of the database that changes whenever anything commits, from any connection or
process, so that a page read under one stamp can be served again until the stamp moves.

- SQLite: ``PRAGMA data_version`` on a connection of our own that never writes. SQLite
  changes it whenever *another* connection commits to the file (a checkpoint moves it too,
  which only costs a re-read). It takes microseconds, no lock and no transaction.
- PostgreSQL: ``pg_current_snapshot()``, which moves when any transaction that wrote
  commits. Unlike ``max(id)`` of a table it also catches a transaction that took its id
  before another one but committed after it.
- Anything else, such as an in-memory SQLite database that another connection cannot see:
  no stamp (None), meaning "do not reuse".
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Hashable
from pathlib import Path

from sqlalchemy import Engine

_SNAPSHOT_SQL = "SELECT pg_current_snapshot()::text"


class CommitStamp:
    """Reads the stamp of ``engine``'s database; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._watcher: sqlite3.Connection | None = None
        database = engine.url.database or ""
        dialect = engine.dialect.name
        in_file = dialect == "sqlite" and _is_file(database)
        self._sqlite_path = str(Path(database).resolve()) if in_file else None
        self._postgres = dialect == "postgresql"
        # Whether ``read`` does no I/O wait worth a worker thread (SQLite's is a memory read).
        self.instant = not self._postgres

    def read(self) -> Hashable | None:
        """The current stamp; equal stamps mean nothing was committed in between. Read it
        *before* the queries whose result it will label: the result is then at least as new.
        """
        if self._sqlite_path is not None:
            with self._lock:
                if self._watcher is None:
                    # Autocommit and never written through, so that every commit to the
                    # file counts as "another connection's".
                    self._watcher = sqlite3.connect(
                        self._sqlite_path, isolation_level=None, check_same_thread=False
                    )
                row = self._watcher.execute("PRAGMA data_version").fetchone()
            return ("sqlite", row[0])
        if self._postgres:
            with self._engine.connect() as conn:
                return ("postgresql", conn.exec_driver_sql(_SNAPSHOT_SQL).scalar_one())
        return None

    def close(self) -> None:
        """Close the SQLite watcher connection (a later ``read`` opens it again)."""
        with self._lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None


def _is_file(database: str) -> bool:
    return bool(database) and database != ":memory:" and not database.startswith("file::memory")
