"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when
AGGREGATOR_TEST_DATABASE_URL is set), the app, an HTTP client, and Chromium for browser tests."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from aggregator.app import create_app
from aggregator.config import Settings
from aggregator.db import make_engine, migrate

PG_URL = os.environ.get("AGGREGATOR_TEST_DATABASE_URL", "")
REQUIRE_BROWSER = os.environ.get("AGGREGATOR_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("AGGREGATOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]

# The developer's own AGGREGATOR_* settings must not leak into tests.
for _name in list(os.environ):
    if _name.startswith("AGGREGATOR_") and _name not in {
        "AGGREGATOR_TEST_DATABASE_URL",
        "AGGREGATOR_REQUIRE_BROWSER",
        "AGGREGATOR_CHROMIUM",
    }:
        del os.environ[_name]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the server's loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once per run: a SQLite file to copy, or a fresh PostgreSQL DB."""
    if not PG_URL:
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        engine.dispose()
        yield str(path)
        return
    url = make_url(PG_URL)
    name = f"wr_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(test_url)
    migrate(engine)
    engine.dispose()
    try:
        yield test_url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    if not PG_URL:
        target = tmp_path / "test.db"
        shutil.copyfile(migrated_template, target)
        yield f"sqlite:///{target}"
        return
    yield migrated_template
    engine = create_engine(migrated_template)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings isolated in ``tmp_path`` (no .env, no scheduler, loopback fetches allowed)."""
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "database_url": database_url,
        "secret_key": "test-secret-" + "x" * 40,
        "scheduler_enabled": False,
        "public_base_url": "http://testserver",
        "fetch_allow_networks": ("127.0.0.0/8",),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test."""
    return make_settings(tmp_path, database_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the test database."""
    engine = make_engine(settings.effective_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test database."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def app(settings: Settings) -> Any:
    """The application, scheduler off."""
    return create_app(settings, start_scheduler=False)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """An HTTP client for the app, lifespan running."""
    with TestClient(app, base_url="http://testserver") as client:
        yield client


# -- browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; skips (or fails when required) without it."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port; yields its base URL."""
    from tests.fakes.server import serve_app

    with serve_app(app) as base_url:
        yield base_url
    # uvicorn runs without lifespan here, so stop what the app started ourselves.
    app.state.upload_worker.stop()
    app.state.engine.dispose()


class ConsoleErrors(list[str]):
    """Console errors and page errors collected from a Playwright page."""

    def attach(self, page: Any) -> Any:
        page.on("console", lambda msg: msg.type == "error" and self.append(msg.text))
        page.on("pageerror", lambda exc: self.append(str(exc)))
        # Name a failing sub-resource too (the console only says "Failed to load resource");
        # a page answering 4xx on purpose, like a form with errors, is not an error here.
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and r.request.resource_type != "document"
                and self.append(f"HTTP {r.status} {r.url}")
            ),
        )
        return page


@pytest.fixture
def console_errors() -> ConsoleErrors:
    """Attach to a page with ``console_errors.attach(page)``; assert it stays empty."""
    return ConsoleErrors()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright's sync API keeps an event loop running on the main
    thread while the browser is open, and async tests cannot start their own beside it."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
