"""Helpers shared by the command modules: settings, a migrated engine, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from aggregator.config import Settings
from aggregator.db import make_engine, session_scope


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value is a clear CLI error."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"AGGREGATOR_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from None


def engine_for(settings: Settings) -> Engine:
    """An engine on the configured database, migrated to the newest revision."""
    from aggregator.db import migrate

    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return engine


@contextmanager
def cli_session() -> Iterator[tuple[Settings, Session]]:
    """Settings and a session on a migrated database, for one command."""
    settings = load_settings()
    engine = engine_for(settings)
    try:
        with session_scope(engine) as session:
            yield settings, session
    finally:
        engine.dispose()


def parse_when(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date-time with a zone (``2027-01-27T10:00+02:00``), or None."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time", param_hint=name
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} needs a time zone, e.g. {value}+00:00", param_hint=name
        )
    return parsed


def positive_id(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    """Click callback: ids are positive integers."""
    if value is not None and value <= 0:
        raise click.BadParameter("must be a positive number")
    return value


def echo_json_lines(rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    """Print one compact JSON object per line."""
    import json

    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))
