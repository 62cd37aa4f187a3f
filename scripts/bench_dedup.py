#!/usr/bin/env python3
"""Benchmark: what storing a page of new images costs in duplicate search, on a campaign with
20,000 images, against reading the same window with bare SQL in the same run.

Every group of uploads and every collector page with images compares its images with the
campaign's ``recent_hashes.WINDOW`` most recent ones. Printed, medians over ``--runs``:

* **first read**: a process's first page for the campaign reads the whole window;
* **kept, 5 new**: a later page, after five more images were stored by anyone (the usual
  case: only what is new is read);
* **kept, with a rescan**: the same, when it is also the page that reads the last
  ``RESCAN`` ids again (at most once every ``RESCAN_SECONDS``);
* **raw window**: the whole window through the bare DB-API cursor: what reading it for
  every page (as ingest did before the hashes were kept) costs at the least;
* **compare one image**: one new image against the window (exact, then near duplicates),
  through the kept index, against **a scan of the window**: the same comparison with every
  hash in a plain Python loop (what ingest did before the window was indexed).

    .venv/bin/python scripts/bench_dedup.py [--items 20000] [--runs 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_rows import asset_row, insert_rows, submission_row  # noqa: E402
from sqlmodel import Session  # noqa: E402

from aggregator.db import make_engine, migrate, session_scope  # noqa: E402
from aggregator.media.dedup import hamming  # noqa: E402
from aggregator.services import recent_hashes  # noqa: E402
from aggregator.services.campaigns import create_campaign  # noqa: E402

RAW = (
    "SELECT mediaasset.id, mediaasset.phash, mediaasset.sha256 FROM mediaasset "
    "JOIN submission ON submission.id = mediaasset.submission_id "
    "WHERE submission.campaign_id = {campaign} ORDER BY mediaasset.id DESC LIMIT {window}"
)


def median_ms(
    fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default="", help="An empty database (default SQLite).")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-dedup-')}/bench.db"
    engine = make_engine(url)
    migrate(engine)
    with session_scope(engine) as session:
        campaign = create_campaign(session=session, slug="dedup", name="Dedup", hashtags=["x"])
    assert campaign.id is not None
    at = datetime.now(UTC)
    rng = random.Random(5)
    next_id = [1]

    def store(count: int) -> None:
        first = next_id[0]
        ids = range(first, first + count)
        next_id[0] += count
        assets = [{**asset_row(n, at), "phash": rng.getrandbits(63)} for n in ids]
        insert_rows(engine, [submission_row(n, campaign.id or 0, at) for n in ids], assets)

    store(args.items)
    window = recent_hashes.WINDOW

    def first_read() -> None:
        other = make_engine(url)  # a new process's first page: nothing kept yet
        try:
            with Session(other) as session:
                recent_hashes.recent_hashes(session, campaign)
        finally:
            other.dispose()

    def kept_read() -> None:
        with Session(engine) as session:
            recent_hashes.recent_hashes(session, campaign)

    def due_rescan() -> None:
        store(5)
        recent_hashes._KEPT(engine)[campaign.id or 0].rescanned_at = float("-inf")

    def raw_read() -> list[tuple[int, int, str]]:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(RAW.format(campaign=campaign.id, window=window))
            return cursor.fetchall()
        finally:
            connection.close()

    rows = raw_read()

    def scan_window(phash: int) -> object:
        # Comparing with every hash of the window, as ingest did before the window was indexed.
        for asset_id, _other, sha in rows:
            if sha == "f" * 64:
                return asset_id
        return [i for i, other, _sha in rows if hamming(phash, other) <= 8]

    kept_read()  # this process now keeps the window
    with Session(engine) as session:
        page = recent_hashes.recent_hashes(session, campaign)
    first = median_ms(first_read, max(3, args.runs // 5))
    kept = median_ms(kept_read, args.runs, before=lambda: store(5))
    rescan = median_ms(kept_read, args.runs, before=due_rescan)
    raw = median_ms(raw_read, args.runs)
    compare = median_ms(lambda: page.duplicate_of("f" * 64, rng.getrandbits(63), 8), args.runs)
    scan = median_ms(lambda: scan_window(rng.getrandbits(63)), args.runs)
    print(f"duplicate search, {engine.dialect.name}, {args.items:,} images in the campaign")
    print(f"  first read of the window     {first:8.2f} ms")
    print(f"  kept, 5 new images since     {kept:8.2f} ms")
    print(f"  kept, with a rescan          {rescan:8.2f} ms")
    print(f"  raw window (DB-API)          {raw:8.2f} ms")
    print(f"  compare one image            {compare:8.3f} ms")
    print(f"  scan of the window (Python)  {scan:8.3f} ms")
    print(f"kept / raw window: {kept / raw:.2f}×; compare / scan: {compare / scan:.3f}×")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
