"""Migrations and models agree, and upgrade works on an empty database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import aggregator.models  # noqa: F401
from aggregator.db import is_sqlite, migrate


def test_upgrade_creates_every_table_and_is_idempotent(engine: Engine) -> None:
    migrate(engine)  # already at head: a second upgrade is a no-op
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_autogenerate_finds_no_difference(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "render_as_batch": is_sqlite(engine)},
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_sqlite_connection_pragmas(engine: Engine) -> None:
    if not is_sqlite(engine):
        pytest.skip("SQLite connection settings; PostgreSQL needs none")
    with engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 2  # FULL
        assert pragma("busy_timeout") == 30000
