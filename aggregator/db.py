"""Engine construction and sessions.

SQLite gets WAL, synchronous=FULL, foreign keys and a busy timeout on every connection
(DESIGN.md "Numbers"); PostgreSQL is used as configured. ``migrate`` brings a database to the
newest Alembic revision; it is what ``aggregator init`` and application start-up call.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    """True when the engine (or URL) is SQLite."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def engine_of(session: Session) -> Engine:
    """The engine a session is bound to."""
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


T = TypeVar("T")


class PerEngine(Generic[T]):
    """Process state kept for each engine (a lock, a committer, kept rows), made on first use
    by ``factory(engine)`` and dropped with the engine."""

    def __init__(self, factory: Callable[[Engine], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[Engine, T] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def __call__(self, engine: Engine) -> T:
        """The engine's value, made now if it has none."""
        with self._guard:
            value = self._values.get(engine)
            if value is None:
                value = self._values[engine] = self._factory(engine)
            return value

    def clear(self) -> None:
        """Forget every engine's value (the next use makes a new one)."""
        with self._guard:
            self._values.clear()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the connection settings this project relies on."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that
        # "BEGIN IMMEDIATE" style locking and SAVEPOINTs behave as documented.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Any:
    """An Alembic Config pointing at the packaged migrations and this engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for one unit of work outside a request: commit on success, else roll back."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
