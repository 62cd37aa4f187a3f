"""A stamp of the database that changes whenever anything commits, from any connection or
process, so that a page read under one stamp can be served again until the stamp moves.

- SQLite: ``PRAGMA data_version``. SQLite changes it whenever *another* connection commits to
  the file (a checkpoint moves it too, which only costs a re-read); our watcher connection
  never writes, so every commit counts. It takes microseconds, no lock and no transaction.
- PostgreSQL: ``pg_current_snapshot()``, which moves when any transaction that wrote
  commits. Unlike ``max(id)`` of a table it also catches a transaction that took its id
  before another one but committed after it. One round trip. It is the whole server's: a
  commit to another database on it moves the stamp too, which costs a re-read, never a
  stale page.
- Anything else, such as an in-memory SQLite database that another connection cannot see:
  no stamp (None), meaning "do not reuse".

The watcher is one connection of its own, outside the pool, in autocommit (it never holds a
transaction open), reopened once if the server dropped it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable
from typing import Any, Final

from sqlalchemy import Engine

_QUERIES: Final = {
    "sqlite": "PRAGMA data_version",
    "postgresql": "SELECT pg_current_snapshot()::text",
}


class CommitStamp:
    """Reads the stamp of ``engine``'s database; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._watcher: Any = None  # a DB-API connection
        # SQLite counts per connection: a reopened watcher's numbers start over, so they are
        # told apart from the old one's by this generation.
        self._generation = 0
        self._closer: weakref.finalize[Any, Any] | None = None
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        dialect = engine.dialect.name
        database = engine.url.database or ""
        in_memory = dialect == "sqlite" and (
            database in ("", ":memory:")
            or database.startswith("file::memory:")
            or engine.url.query.get("mode") == "memory"
        )
        self._query = None if in_memory else _QUERIES.get(dialect)
        # Whether ``read`` does no I/O wait worth a worker thread (SQLite's is a memory read).
        self.instant = dialect == "sqlite"

    def read(self) -> Hashable | None:
        """The current stamp; equal stamps mean nothing was committed in between. Read it
        *before* the queries whose result it will label: the result is then at least as new.
        """
        if self._query is None:
            return None
        with self._lock:
            try:
                return self._read()
            except self._dbapi_error:
                self._close()  # e.g. the server restarted: one fresh connection, then give up
                return self._read()

    def _read(self) -> Hashable:
        if self._watcher is None:
            record = self._engine.raw_connection()
            record.detach()  # its own, for the life of this object: not the pool's
            if self._engine.dialect.name == "postgresql":
                record.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            self._watcher = record
            self._generation += 1
            # Closed with this object even when no one calls close() (an app whose shutdown
            # was cut short), so the server is not left holding the connection.
            self._closer = weakref.finalize(self, _close_quietly, record, self._dbapi_error)
        cursor = self._watcher.cursor()
        try:
            cursor.execute(self._query)
            return (self._generation, cursor.fetchone()[0])
        finally:
            cursor.close()

    def close(self) -> None:
        """Close the watcher connection (a later ``read`` opens another)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._closer is not None:
            self._closer()  # runs once, however often it is called
        self._watcher = None


def _close_quietly(connection: Any, error: type[Exception]) -> None:
    try:
        connection.close()
    except error:
        pass  # already broken: nothing to release
