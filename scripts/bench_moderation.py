#!/usr/bin/env python3
"""Benchmark: the moderation queue page, one approval and a bulk approval of 100 against the
bare SQL underneath them, in the same run, with 100,000 pending submissions, on SQLite and on
PostgreSQL.

"Server time" is the whole ASGI application handling one request in process (middleware,
session cookie and CSRF checks, routing, the queries, rendering), no network. "Raw SQL" is the
same work's statements run straight on the DB-API cursor: for the queue, the claiming UPDATE …
RETURNING, the page's rows and their images; for an approval, the conditional UPDATE, the audit
INSERT and the COMMIT; for a bulk approval, one UPDATE for 100 ids, 100 audit rows, COMMIT.
Targets: queue p95 ≤ 30 ms, approve p95 ≤ 15 ms, each ≤ 3× its raw SQL.

After the timed runs, a separate instrumented pass splits each request's median into the time
spent in SQL statements (engine events), in template rendering (Jinja) and in everything else
(framework, auth, ORM objects), to show where a request's time goes next to its raw SQL.

    .venv/bin/python scripts/bench_moderation.py [--items 100000] [--runs 200]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test | --postgres none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jinja2  # noqa: E402
from bench_rows import asset_row, insert_rows, submission_row  # noqa: E402
from sqlalchemy import Engine, create_engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from aggregator.app import create_app  # noqa: E402
from aggregator.config import Settings  # noqa: E402
from aggregator.db import make_engine, migrate, session_scope  # noqa: E402
from aggregator.models import (  # noqa: E402
    LoginSession,
    Role,
    User,
)
from aggregator.services.campaigns import create_campaign  # noqa: E402
from aggregator.services.moderation_queue import PAGE_SIZE  # noqa: E402
from aggregator.services.users import hash_token  # noqa: E402

BULK = 100
T0 = datetime(2026, 1, 27, 8, 0, tzinfo=UTC)
TARGETS = {"queue page": 30.0, "approve one": 15.0, "bulk approve 100": None}


def populate(engine: Engine, items: int) -> tuple[int, str, str]:
    """``items`` pending submissions with one image each, a moderator and a login session."""
    with session_scope(engine) as session:
        campaign = create_campaign(session=session, slug="bench", name="Bench", hashtags=["wr"])
        user = User(email="moderator@bench.example", role=Role.moderator, password_hash="x")
        session.add(user)
        session.flush()
        token = secrets.token_urlsafe(32)
        session.add(
            LoginSession(
                token_hash=hash_token(token),
                user_id=user.id,  # type: ignore[arg-type]
                expires_at=datetime.now(UTC) + timedelta(hours=12),
            )
        )
        campaign_id, user_id = campaign.id or 0, user.id or 0
    rows: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    for n in range(1, items + 1):
        at = T0 + timedelta(seconds=n)
        rows.append(
            submission_row(
                n,
                campaign_id,
                at,
                origin="collected",
                external_id=f"b{n}",
                author_handle=f"@p{n}@mastodon.example",
                sensitive=n % 50 == 0,
                flags=["near_duplicate"] if n % 40 == 0 else [],
            )
        )
        assets.append(asset_row(n, at))
    insert_rows(engine, rows, assets)
    return user_id, token, secrets.token_urlsafe(32)


class Raw:
    """The statements underneath each action, on one DB-API connection."""

    def __init__(self, engine: Engine, user_id: int) -> None:
        self.pg = engine.dialect.name == "postgresql"
        self.connection = engine.raw_connection()
        self.user_id = user_id
        self.mark = "%s" if self.pg else "?"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.mark)

    def _begin(self, cursor: Any) -> None:
        # The project's SQLite connections run in autocommit mode and issue BEGIN themselves
        # (aggregator/db.py); do the same so one COMMIT covers the work, as in the app.
        if not self.pg:
            cursor.execute("BEGIN")

    def _time(self, value: datetime) -> Any:
        return value if self.pg else value.replace(tzinfo=None).isoformat(" ")

    def queue(self) -> None:
        now = datetime.now(UTC)
        lock = " FOR UPDATE SKIP LOCKED" if self.pg else ""
        cursor = self.connection.cursor()
        self._begin(cursor)
        cursor.execute(
            self._sql(
                "UPDATE submission SET claimed_by_id = ?, claimed_until = ? WHERE id IN "
                "(SELECT id FROM submission WHERE status = 'pending' AND (claimed_until IS NULL "
                "OR claimed_until < ? OR claimed_by_id = ?) AND (first_approved_by_id IS NULL "
                f"OR first_approved_by_id != ?) ORDER BY id LIMIT {PAGE_SIZE}{lock}) RETURNING id"
            ),
            (
                self.user_id,
                self._time(now + timedelta(minutes=5)),
                self._time(now),
                self.user_id,
                self.user_id,
            ),
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        self._commit(cursor)
        marks = ", ".join([self.mark] * len(ids))
        cursor.execute(f"SELECT * FROM submission WHERE id IN ({marks})", ids)
        cursor.fetchall()
        cursor.execute(
            f"SELECT * FROM mediaasset WHERE submission_id IN ({marks}) "
            "ORDER BY submission_id, position",
            ids,
        )
        cursor.fetchall()
        if self.pg:
            self.connection.commit()  # end the read transaction, as the app does
        cursor.close()

    def _commit(self, cursor: Any) -> None:
        if self.pg:
            self.connection.commit()
        else:
            cursor.execute("COMMIT")

    def approve(self, ids: list[int]) -> None:
        now = self._time(datetime.now(UTC))
        cursor = self.connection.cursor()
        self._begin(cursor)
        marks = ", ".join(["?"] * len(ids))
        cursor.execute(
            self._sql(
                "UPDATE submission SET status = 'approved', decided_at = ?, claimed_by_id = NULL, "
                f"claimed_until = NULL WHERE id IN ({marks}) AND status = 'pending'"
            ),
            (now, *ids),
        )
        cursor.executemany(
            self._sql(
                "INSERT INTO auditentry (submission_id, actor_id, actor_label, action, "
                "from_status, to_status, reason, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                (i, self.user_id, "bench", "transition", "pending", "approved", "", "{}", now)
                for i in ids
            ],
        )
        self._commit(cursor)
        cursor.close()


class Client:
    """Requests straight into the ASGI app, as a logged-in moderator's browser sends them."""

    def __init__(self, app: Any, session_token: str, csrf: str) -> None:
        self.app = app
        self.cookie = f"session={session_token}; csrftoken={csrf}".encode()
        self.csrf = csrf.encode()

    async def request(self, method: str, path: str, body: Any = None) -> int:
        target, _, query = path.partition("?")
        payload = json.dumps(body).encode() if body is not None else b""
        headers = [(b"host", b"bench"), (b"cookie", self.cookie), (b"accept-language", b"ru")]
        if method == "POST":
            headers += [
                (b"x-csrf-token", self.csrf),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
            "state": {},
        }
        status = 0
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def measure(run: Callable[[], Any], runs: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


class Breakdown:
    """Time spent in SQL statements and in template rendering while it is ``active``."""

    def __init__(self, engine: Engine) -> None:
        self.sql = 0.0
        self.render = 0.0
        self._started: list[float] = []
        self._engine = engine
        self._render = jinja2.Template.render
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        breakdown = self

        def timed_render(template: jinja2.Template, *args: Any, **kwargs: Any) -> str:
            started = time.perf_counter()
            try:
                return breakdown._render(template, *args, **kwargs)
            finally:
                breakdown.render += time.perf_counter() - started

        jinja2.Template.render = timed_render  # type: ignore[method-assign]

    def _before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, *_args: Any) -> None:
        self.sql += time.perf_counter() - self._started.pop()

    def close(self) -> None:
        """Stop timing: the engine events are removed and rendering is left as it was."""
        jinja2.Template.render = self._render  # type: ignore[method-assign]
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)


def breakdown(engine: Engine, run: Callable[[], Any], runs: int) -> tuple[float, float, float]:
    """Median whole time, SQL and rendering per request (ms), measured with timers on."""
    timer = Breakdown(engine)
    whole: list[float] = []
    sql: list[float] = []
    rendering: list[float] = []
    try:
        for _ in range(runs):
            timer.sql = timer.render = 0.0
            started = time.perf_counter()
            run()
            whole.append((time.perf_counter() - started) * 1000)
            sql.append(timer.sql * 1000)
            rendering.append(timer.render * 1000)
    finally:
        timer.close()
    return statistics.median(whole), statistics.median(sql), statistics.median(rendering)


def bench(database_url: str, items: int, runs: int) -> bool:
    """One backend: populate, then time each action against its raw SQL; True when on target."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            var_dir=Path(tmp),
            database_url=database_url or None,
            secret_key="bench-" + "x" * 40,
            scheduler_enabled=False,
            public_base_url="http://bench",
        )
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        started = time.perf_counter()
        user_id, token, csrf = populate(engine, items)
        print(
            f"\n{engine.dialect.name}: {items:,} pending submissions inserted in "
            f"{time.perf_counter() - started:.1f} s; {runs} runs each"
        )
        app = create_app(settings, start_scheduler=False)
        client = Client(app, token, csrf)
        raw = Raw(engine, user_id)
        loop = asyncio.new_event_loop()
        # Separate id ranges so no action finds its items already decided.
        approve_web = iter(range(items, 0, -1))
        # (The web range also serves the breakdown pass, up to 100 more.)
        approve_raw = iter(range(items - 2 * (runs + 20) - 100, 0, -1))
        bulk_start = PAGE_SIZE + 10

        def bulk_ids() -> Iterator[list[int]]:
            start = bulk_start
            while True:
                yield list(range(start, start + BULK))
                start += BULK

        bulk_web, bulk_raw = bulk_ids(), bulk_ids()
        for _ in range(runs + 20):  # the raw bulk takes the range after the web one
            next(bulk_raw)

        def web(
            method: str, path: str, body: Callable[[], Any] | None = None
        ) -> Callable[[], None]:
            def run() -> None:
                status = loop.run_until_complete(
                    client.request(
                        method, path() if callable(path) else path, body() if body else None
                    )
                )
                assert status == 200, (method, status)

            return run

        cases: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
            ("queue page", web("GET", "/moderate"), raw.queue),
            (
                "approve one",
                web("POST", lambda: f"/api/v1/submissions/{next(approve_web)}/approve"),  # type: ignore[arg-type]
                lambda: raw.approve([next(approve_raw)]),
            ),
            (
                "bulk approve 100",
                web(
                    "POST",
                    "/api/v1/submissions/bulk",
                    lambda: {"ids": next(bulk_web), "action": "approve"},
                ),
                lambda: raw.approve(next(bulk_raw)),
            ),
        ]
        ok = True
        print(f"{'':18} {'p50 ms':>8} {'p95 ms':>8} {'raw p95':>8} {'ratio':>6}")
        split = []
        for label, served_run, raw_run in cases:
            raw_samples = measure(raw_run, runs)
            served = measure(served_run, runs)
            ratio = p95(served) / p95(raw_samples)
            target = TARGETS[label]
            good = ratio <= 3 and (target is None or p95(served) <= target)
            ok &= good
            print(
                f"{label:18} {statistics.median(served):8.2f} {p95(served):8.2f} "
                f"{p95(raw_samples):8.2f} {ratio:5.1f}× {'ok' if good else 'MISSED'}"
            )
            if label != "bulk approve 100":  # its ids are spoken for (see above)
                split.append((label, *breakdown(app.state.engine, served_run, min(runs, 100))))
        print("where a request's time goes (medians of a separate pass with timers on, ms):")
        for label, whole, sql, rendering in split:
            print(
                f"  {label:18} whole {whole:6.2f} = SQL {sql:5.2f} + templates {rendering:5.2f}"
                f" + framework, auth and ORM {whole - sql - rendering:5.2f}"
            )
        loop.close()
        raw.connection.close()
        engine.dispose()
        app.state.engine.dispose()
    return ok


@contextmanager
def postgres_database(url: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the run (dropped afterwards); None if unreachable."""
    parsed = make_url(url)
    name = f"bench_moderation_{os.getpid()}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - report and go on with SQLite only
        print(f"\npostgresql: skipped ({type(exc).__name__}: {exc})".splitlines()[0])
        admin.dispose()
        yield None
        return
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="server to create a scratch database on, or 'none'",
    )
    args = parser.parse_args()
    ok = bench("", args.items, args.runs)
    if args.postgres != "none":
        with postgres_database(args.postgres) as url:
            if url:
                ok &= bench(url, args.items, args.runs)
    print("\ntargets: queue p95 ≤ 30 ms, approve p95 ≤ 15 ms, each ≤ 3× its raw SQL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
