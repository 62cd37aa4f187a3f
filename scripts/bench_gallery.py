#!/usr/bin/env python3
"""Benchmark: the public gallery page, one read-API page and the Atom feed against the bare SQL
underneath them, in the same run, on a campaign with 50,000 approved photos.

"Server time" is the whole ASGI application handling one GET in process (middleware, routing,
the queries, rendering), no network. A page is kept between commits (``web/body_cache.py``):
the plain lines are visitors arriving while nothing is committed, the "after a commit" lines
commit a one-row write (untimed) before every request, so each request queries and renders
as the first visitor after an approval does. "SQL" is the same page's SELECTs (the public
listing, then its images) run straight on the DB-API cursor, "SA" the same through
SQLAlchemy, interleaved with the requests so that both see the same machine load. Targets:
p95 ≤ 30 ms each, ≤ 3× raw.

    .venv/bin/python scripts/bench_gallery.py [--items 50000] [--runs 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_rows import asset_row, insert_rows, submission_row  # noqa: E402
from sqlalchemy import Engine, event, text  # noqa: E402
from sqlalchemy import select as sa_select  # noqa: E402

from aggregator.app import create_app  # noqa: E402
from aggregator.config import Settings  # noqa: E402
from aggregator.db import make_engine, migrate, session_scope  # noqa: E402
from aggregator.models import Submission  # noqa: E402
from aggregator.services.campaigns import create_campaign  # noqa: E402
from aggregator.services.gallery import (  # noqa: E402
    FEED_SIZE,
    PAGE_SIZE,
    Filters,
    _assets_statement,
    decode_cursor,
    encode_cursor,
    page_query,
)

API_LIMIT = 20
T0 = datetime(2025, 1, 27, 8, 0, tzinfo=UTC)


def populate(engine: Engine, items: int) -> tuple[int, str]:
    """A campaign with ``items`` approved web photos, plus 10 % projection-only and 10 % pending."""
    with session_scope(engine) as session:
        campaign = create_campaign(
            session=session, slug="bench", name="Bench", hashtags=["weremember"]
        )
        campaign_id = campaign.id or 0
    rng = random.Random(27)
    total = items + items // 5
    cities = ["Almaty", "Astana", "Karaganda", "Moscow", "Tel Aviv", None]
    submissions: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    for n in range(1, total + 1):
        hidden = n > items
        posted = T0 + timedelta(seconds=rng.randrange(0, 30 * 86400))
        submissions.append(
            submission_row(
                n,
                campaign_id,
                posted,
                city=rng.choice(cities),
                text="We remember. " * rng.randrange(1, 6),
                language=rng.choice(["ru", "kk", "en", "he"]),
                consent=["projection"] if hidden and n % 2 else ["projection", "web"],
                status="pending" if hidden and not n % 2 else "approved",
            )
        )
        assets.append(asset_row(n, posted))
    insert_rows(engine, submissions, assets)
    return campaign_id, rng.choice(submissions[: items // 2])["public_id"]


def raw_page(
    engine: Engine,
    campaign_id: int,
    limit: int,
    before: str | None = None,
    *,
    via_sqlalchemy: bool = False,
) -> Callable[[], Any]:
    """The page's two SELECTs, exactly as the app sends them, run bare on the DB-API cursor
    (or, with ``via_sqlalchemy``, through a SQLAlchemy connection as the service runs them)."""
    position = decode_cursor(before) if before else None
    stmt, params = page_query(campaign_id, Filters(), position, limit)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            ids = [row[0] for row in conn.execute(stmt, params)][: limit - 1]
            conn.execute(_assets_statement(), {"ids": ids}).all()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    (sql, bound), (assets_sql, assets_bound) = captured[-2:]
    connection = engine.raw_connection()
    if via_sqlalchemy:
        conn = engine.connect()

        def run_sa() -> Any:
            rows = conn.execute(stmt, params).all()
            conn.execute(_assets_statement(), {"ids": ids}).all()
            conn.rollback()
            return rows

        return run_sa

    def run() -> Any:
        cursor = connection.cursor()
        cursor.execute(sql, bound)
        rows = cursor.fetchall()
        cursor.execute(assets_sql, assets_bound)
        cursor.fetchall()
        cursor.close()
        return rows

    return run


def touch(engine: Engine, campaign_id: int) -> Callable[[], None]:
    """A one-row committed change (as an approval commits), so the next request finds the
    database changed and queries afresh. (It must change a value: SQLite does not write a
    row back unchanged, and then nothing was committed.)"""
    count = itertools.count()

    def run() -> None:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE campaign SET require_second_approval = :on WHERE id = :id"),
                {"on": next(count) % 2 == 0, "id": campaign_id},
            )

    return run


async def asgi_get(app: Any, path: str) -> int:
    """One GET through the ASGI app in process; returns the status."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"accept-language", b"ru")],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


async def measure(
    app: Any,
    path: str,
    raws: list[Callable[[], Any]],
    runs: int,
    before_each: Callable[[], Any] | None = None,
) -> list[list[float]]:
    """Interleave one request and one run of each raw query, so all share the same load;
    ``before_each`` runs, untimed, before every request."""
    for _ in range(20):
        assert await asgi_get(app, path) == 200, path
        for raw in raws:
            raw()
    samples: list[list[float]] = [[] for _ in range(len(raws) + 1)]
    for _ in range(runs):
        if before_each is not None:
            before_each()
        start = time.perf_counter()
        await asgi_get(app, path)
        samples[0].append((time.perf_counter() - start) * 1000)
        for n, raw in enumerate(raws, start=1):
            start = time.perf_counter()
            raw()
            samples[n].append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            var_dir=Path(tmp),
            database_url=args.database_url,
            secret_key="bench-" + "x" * 40,
            scheduler_enabled=False,
            public_base_url="https://weremember.example",
        )
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        if args.database_url:
            with engine.begin() as conn:  # a reused database: start from nothing
                conn.execute(
                    text("TRUNCATE campaign, submission, mediaasset RESTART IDENTITY CASCADE")
                )
        started = time.perf_counter()
        campaign_id, middle = populate(engine, args.items)
        print(
            f"{engine.dialect.name}: {args.items:,} approved photos (+{args.items // 5:,} hidden) "
            f"inserted in {time.perf_counter() - started:.1f} s; {args.runs} runs each"
        )
        app = create_app(settings, start_scheduler=False)
        with session_scope(engine) as session:
            row = session.execute(
                sa_select(Submission.posted_at).where(Submission.public_id == middle)  # type: ignore[call-overload]
            ).one()
        deep = encode_cursor(row[0], middle)
        cases = [
            ("gallery page", "/c/bench/gallery", PAGE_SIZE + 1, None),
            ("gallery, deep page", f"/c/bench/gallery?before={deep}", PAGE_SIZE + 1, deep),
            ("API page", f"/api/v1/campaigns/bench/items?limit={API_LIMIT}", API_LIMIT + 1, None),
            ("Atom feed", "/c/bench/feed.xml", FEED_SIZE + 1, None),
        ]
        cases += [(f"{label}, after a commit", *rest) for label, *rest in cases]
        failed = False
        floor = asyncio.run(measure(app, "/healthz", [], args.runs))[0]
        print(
            f"{'':36} {'p50 ms':>7} {'p95 ms':>7} {'SQL p95':>8} {'ratio':>6} "
            f"{'SA p95':>7} {'ratio':>6}"
        )
        print(f"{'(/healthz floor)':36} {statistics.median(floor):7.2f} {p95(floor):7.2f}")
        for label, path, limit, before in cases:
            raws = [
                raw_page(engine, campaign_id, limit, before),
                raw_page(engine, campaign_id, limit, before, via_sqlalchemy=True),
            ]
            commit = touch(engine, campaign_id) if label.endswith("commit") else None
            served, raw, via_sa = asyncio.run(measure(app, path, raws, args.runs, commit))
            ratio, sa_ratio = p95(served) / p95(raw), p95(served) / p95(via_sa)
            ok = p95(served) <= 30 and ratio <= 3
            failed |= not ok
            print(
                f"{label:36} {statistics.median(served):7.2f} {p95(served):7.2f} "
                f"{p95(raw):8.2f} {ratio:5.1f}× {p95(via_sa):7.2f} {sa_ratio:5.1f}× "
                f"{'ok' if ok else 'MISSED'}"
            )
        print("SQL = the page's SELECTs on the DB-API cursor; SA = the same through SQLAlchemy.")
        print("targets: p95 ≤ 30 ms and ≤ 3× the raw SQL")
        engine.dispose()
        app.state.engine.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
