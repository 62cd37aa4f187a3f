"""Helpers shared by the auth, moderation and admin tests.

``session`` overrides the conftest fixture for these modules: on SQLite it uses pysqlite's
own transaction handling, where a SELECT outside a write does not open a transaction. The
test code can then read what the app committed a moment ago, and write after the app wrote,
without holding a stale WAL snapshot (the app itself keeps the project's engine settings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlmodel import Session

from aggregator.config import Settings
from aggregator.db import is_sqlite, make_engine
from tests.factories import PASSWORD


def fresh_session(settings: Settings) -> Iterator[Session]:
    """A test-side session that never keeps a read snapshot open between statements.

    Use it as each module's ``session`` fixture: ``yield from fresh_session(settings)``.
    """
    url = settings.effective_database_url
    engine = (
        create_engine(url, connect_args={"timeout": 30}) if is_sqlite(url) else make_engine(url)
    )
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def csrf(client: TestClient) -> str:
    """Make sure the CSRF cookie exists and return its value."""
    if "csrftoken" not in client.cookies:
        client.get("/login")
    return str(client.cookies["csrftoken"])


def login(client: TestClient, email: str, password: str = PASSWORD, **extra: str) -> Any:
    """POST the login form the way a browser does."""
    data = {"email": email, "password": password, "csrf_token": csrf(client), **extra}
    return client.post("/login", data=data, follow_redirects=False)


def api(client: TestClient, path: str, body: Any = None) -> Any:
    """POST JSON to the moderation API with the CSRF header."""
    return client.post("/api/v1" + path, json=body or {}, headers={"X-CSRF-Token": csrf(client)})
