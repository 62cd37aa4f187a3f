#!/usr/bin/env python3
"""Benchmark: collection end to end against the media pipeline alone (the limit).

A fake Mastodon on loopback (uvicorn) serves N statuses, 40 a page, each with one 1600×1200
JPEG. Prints posts/s for the whole path (HTTP, safe fetch, pipeline, storage, database) and the
ratio to the pipeline's own throughput on the same images with the same worker count; then
the rate of text-only posts through ingest and the database.

    .venv/bin/python scripts/bench_ingest.py [--posts 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from aggregator.config import Settings  # noqa: E402
from aggregator.db import make_engine, migrate, session_scope  # noqa: E402
from aggregator.jobs import make_job_context, run_source  # noqa: E402
from aggregator.media import process_image  # noqa: E402
from aggregator.media.storage import LocalStorage  # noqa: E402
from aggregator.models import Campaign, Origin, Source, Submission  # noqa: E402
from aggregator.services.ingest import Incoming, ingest_page, media_limits  # noqa: E402
from tests.fakes.mastodon import FakeMastodon  # noqa: E402
from tests.fakes.server import serve_app  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=2000)
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    images = [photo(i) for i in range(40)]  # 40 distinct photos, reused across posts
    fake = FakeMastodon()
    for n in range(args.posts):
        status = fake.add_status(tags=["WeRemember"], text=f"We remember {n}")
        fake.media[f"media/{status['id']}-0.jpg"] = images[n % len(images)]

    with tempfile.TemporaryDirectory() as tmp, serve_app(fake.app) as base_url:
        for status in fake.statuses.values():
            for attachment in status["media_attachments"]:
                attachment["url"] = attachment["url"].replace("http://mastodon.test", base_url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, var_dir=Path(tmp), fetch_allow_networks=("127.0.0.0/8",)
        )
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        with session_scope(engine) as session:
            campaign = Campaign(slug="bench", name="Bench", hashtags=["weremember"])
            session.add(campaign)
            session.flush()
            source = Source(
                campaign_id=campaign.id,
                kind="mastodon",  # type: ignore[arg-type]
                config={"url": base_url, "hashtags": ["weremember"]},
                # walk the whole timeline forward from the oldest post
                cursor={"min_id": "0"},
            )
            session.add(source)
            session.flush()
            source_id = source.id

        async def collect_all() -> int:
            ctx = make_job_context(settings, engine)
            total = 0
            while True:
                report = await run_source(ctx, source_id, force=True)  # type: ignore[arg-type]
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
            assert session.exec(select(func.count()).select_from(Submission)).one() == args.posts
        assert collected == args.posts

        limits = media_limits(settings)
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            processed = list(  # noqa: F841 (kept alive: the timing includes every result)
                pool.map(
                    lambda n: process_image(images[n % len(images)], limits=limits),
                    range(args.posts),
                )
            )
        pipeline = time.perf_counter() - started

        # Text-only posts: the same number through ingest and the database, 40 per commit.
        with session_scope(engine) as session:
            campaign = session.exec(select(Campaign)).one()
            storage = LocalStorage(settings.effective_media_dir)
            started = time.perf_counter()
            for page in range(0, args.posts, 40):  # as the collector delivers them
                ingest_page(
                    session=session,
                    storage=storage,
                    campaign=campaign,
                    incomings=[
                        Incoming(
                            origin=Origin.collected,
                            images=[],
                            external_id=f"text-{n}",
                            text=f"post {n}",
                        )
                        for n in range(page, min(page + 40, args.posts))
                    ],
                )
                session.commit()
            text_only = time.perf_counter() - started
        engine.dispose()

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
        f"text-only posts through ingest: {args.posts / text_only:7.0f} posts/s  (target >= 1000)"
    )


if __name__ == "__main__":
    main()
