"""Alembic environment: runs against the engine handed over by ``aggregator.db``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import aggregator.models  # noqa: F401  (fills SQLModel.metadata)
from aggregator.db import is_sqlite, make_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    # Plain `alembic` command line: take the URL from the environment like the app does.
    from aggregator.config import Settings

    engine = make_engine(Settings().effective_database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=is_sqlite(engine),  # SQLite needs table rebuilds for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
