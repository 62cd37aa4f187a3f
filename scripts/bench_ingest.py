#!/usr/bin/env python3
"""Benchmark: collection end to end against the media pipeline alone (the limit), and
text-only posts through ingest and the database.

Photo part: a fake Mastodon on loopback (uvicorn, in its own process like a remote
instance) serves N statuses, 40 a page, each with one 1600×1200 JPEG. Prints posts/s for the
whole path (HTTP, safe fetch, pipeline, storage, database) and the ratio to the pipeline's own
throughput on the same images with the same worker count.

Text part: the same number of text-only posts (or ``--text-posts``) through ``ingest_page``
as a collector delivers them: 40 a page for one source, each page and the source's cursor in
one transaction.

Both parts run on a fresh database: a SQLite file in a temporary directory, or, with
``--database-url`` (PostgreSQL), a temporary database created on that server and dropped
afterwards.

    .venv/bin/python scripts/bench_ingest.py [--posts 2000] [--text-only] [--text-posts N]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from aggregator.config import Settings  # noqa: E402
from aggregator.db import is_sqlite, make_engine, migrate, session_scope  # noqa: E402
from aggregator.jobs import make_job_context, run_source  # noqa: E402
from aggregator.media import process_image  # noqa: E402
from aggregator.media.storage import LocalStorage  # noqa: E402
from aggregator.models import Campaign, Origin, Rule, RuleKind, Source, Submission  # noqa: E402
from aggregator.services.ingest import Incoming, ingest_page, media_limits  # noqa: E402
from tests.fakes.mastodon import FakeMastodon  # noqa: E402
from tests.fakes.server import serve_app  # noqa: E402

PAGE = 40  # statuses per page, as the Mastodon collector asks for them
RULES = [
    (RuleKind.blocked_word, "фейк"),
    (RuleKind.blocked_word, "не помним"),
    (RuleKind.blocked_word, "spam"),
    (RuleKind.blocked_instance, "spam.example"),
    (RuleKind.trusted_author, "museum@alzhir.kz"),
]


def photo(seed: int) -> bytes:
    """A photo-like 1600×1200 JPEG: gradient plus camera-like noise."""
    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    noise = Image.effect_noise((1600, 1200), 40 + rng.randrange(30)).convert("RGB")
    tint = Image.new("RGB", (1600, 1200), (rng.randrange(256), rng.randrange(256), 128))
    image = Image.blend(Image.blend(base, noise, 0.35), tint, 0.3)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@contextmanager
def fresh_database(var_dir: Path, server_url: str | None) -> Iterator[str]:
    """A migrated, empty database: SQLite in ``var_dir``, or a temporary one on the server."""
    if server_url is None or is_sqlite(server_url):
        url = server_url or f"sqlite:///{var_dir / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    name = f"wr_bench_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def new_source(engine: Engine, slug: str, config: dict[str, object]) -> int:
    """A campaign with one Mastodon source walking the timeline from the oldest post."""
    with session_scope(engine) as session:
        campaign = Campaign(slug=slug, name="Bench", hashtags=["weremember"])
        session.add(campaign)
        session.flush()
        source = Source(
            campaign_id=campaign.id,
            kind="mastodon",  # type: ignore[arg-type]
            config=config,
            cursor={"min_id": "0"},
        )
        session.add(source)
        session.flush()
        return int(source.id or 0)


def _serve_fake(posts: int, url_out: Any) -> None:
    """Child process: the fake instance with ``posts`` photo statuses, until terminated."""
    images = [photo(i) for i in range(40)]
    fake = FakeMastodon()
    for n in range(posts):
        status = fake.add_status(tags=["WeRemember"], text=f"We remember {n}")
        fake.media[f"media/{status['id']}-0.jpg"] = images[n % len(images)]
    # httptools, as a production server would parse: the instance is not what is measured.
    with serve_app(fake.app, http="httptools") as base_url:
        fake.base_url = base_url
        for status in fake.statuses.values():
            for attachment in status["media_attachments"]:
                attachment["url"] = attachment["url"].replace("http://mastodon.test", base_url)
        url_out.send(base_url)
        threading.Event().wait()  # until the parent terminates this process


@contextmanager
def remote_instance(posts: int) -> Iterator[str]:
    """The fake Mastodon in its own process, as a remote instance is: serving it must not
    take this process's interpreter lock from the collector it is measured against."""
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("spawn").Process(
        target=_serve_fake, args=(posts, send), daemon=True
    )
    child.start()
    try:
        if not receive.poll(120):
            raise SystemExit("the fake Mastodon did not start")
        yield str(receive.recv())
    finally:
        child.terminate()
        child.join(10)


def photo_part(settings: Settings, engine: Engine, posts: int) -> tuple[float, float]:
    """Seconds for collecting ``posts`` photo posts end to end, and for the pipeline alone."""
    workers = os.cpu_count() or 1
    images = [photo(i) for i in range(40)]  # the same 40 distinct photos the instance serves
    with remote_instance(posts) as base_url:
        source_id = new_source(engine, "photos", {"url": base_url, "hashtags": ["weremember"]})

        async def collect_all() -> int:
            ctx = make_job_context(settings, engine)
            total = 0
            while True:
                report = await run_source(ctx, source_id, force=True)
                if not report.ok:
                    raise SystemExit(f"collection failed: {report.error}")
                total += report.new_items
                if report.new_items == 0:
                    break
            await ctx.api_http.aclose()
            await ctx.media_http.aclose()
            return total

        started = time.perf_counter()
        collected = asyncio.run(collect_all())
        end_to_end = time.perf_counter() - started
    with Session(engine) as session:
        stored = (
            select(func.count()).select_from(Submission).where(Submission.source_id == source_id)
        )
        assert session.exec(stored).one() == posts
    assert collected == posts

    limits = media_limits(settings)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        processed = list(  # noqa: F841 (kept alive: the timing includes every result)
            pool.map(lambda n: process_image(images[n % len(images)], limits=limits), range(posts))
        )
    pipeline = time.perf_counter() - started
    return end_to_end, pipeline


def text_part(settings: Settings, engine: Engine, posts: int) -> float:
    """Seconds for ``posts`` text-only posts through ingest, one transaction per page.

    The campaign has a few rules, as a real one does, so every post is checked against them.
    """
    source_id = new_source(engine, "text", {"url": "http://mastodon.test"})
    with session_scope(engine) as session:
        campaign_id = session.exec(select(Source.campaign_id).where(Source.id == source_id)).one()
        for kind, value in RULES:
            session.add(Rule(campaign_id=campaign_id, kind=kind, value=value))
    storage = LocalStorage(settings.effective_media_dir)
    started = time.perf_counter()
    for page in range(0, posts, PAGE):
        # As jobs._store_page does it: a session per page, items and cursor committed together.
        with session_scope(engine) as session:
            source = session.get(Source, source_id)
            assert source is not None
            campaign = session.get(Campaign, source.campaign_id)
            assert campaign is not None
            numbers = range(page, min(page + PAGE, posts))
            results = ingest_page(
                session=session,
                storage=storage,
                campaign=campaign,
                source=source,
                incomings=[
                    Incoming(
                        origin=Origin.collected,
                        images=[],
                        external_id=f"https://mastodon.test/statuses/{n}",
                        url=f"https://mastodon.test/@someone/{n}",
                        author_name="Someone",
                        author_handle=f"someone{n % 50}@mastodon.test",
                        text=f"We remember {n} #WeRemember",
                        hashtags=["weremember"],
                    )
                    for n in numbers
                ],
            )
            source.items_collected += sum(result.created for result in results)
            source.cursor = {"min_id": str(numbers[-1])}
    elapsed = time.perf_counter() - started
    with Session(engine) as session:
        stored = (
            select(func.count()).select_from(Submission).where(Submission.source_id == source_id)
        )
        assert session.exec(stored).one() == posts
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000, help="photo posts (and text posts)")
    parser.add_argument("--text-posts", type=int, help="text-only posts (default: --posts)")
    parser.add_argument("--text-only", action="store_true", help="skip the photo part")
    parser.add_argument("--database-url", help="a PostgreSQL server to run on (default SQLite)")
    args = parser.parse_args()
    text_posts = args.text_posts or args.posts
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp, fresh_database(Path(tmp), args.database_url) as url:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            var_dir=Path(tmp),
            database_url=url,
            fetch_allow_networks=("127.0.0.0/8",),
        )
        engine = make_engine(url)
        try:
            photos = None if args.text_only else photo_part(settings, engine, args.posts)
            text_only = text_part(settings, engine, text_posts)
        finally:
            engine.dispose()

    print(f"database: {make_url(url).get_backend_name()}")
    if photos is not None:
        end_to_end, pipeline = photos
        e2e_rate = args.posts / end_to_end
        limit_rate = args.posts / pipeline
        print(f"posts: {args.posts}, image workers: {workers}")
        print(
            f"end to end (HTTP + fetch + pipeline + store): {e2e_rate:7.1f} posts/s "
            f"({end_to_end:.1f} s)"
        )
        print(f"media pipeline alone, same images, {workers} threads: {limit_rate:7.1f} images/s")
        print(f"ratio end-to-end / pipeline limit: {e2e_rate / limit_rate:.2f}  (target >= 0.8)")
    print(
        f"text-only posts through ingest ({text_posts}, {PAGE} a page): "
        f"{text_posts / text_only:7.0f} posts/s  (target >= 1000)"
    )


if __name__ == "__main__":
    main()
