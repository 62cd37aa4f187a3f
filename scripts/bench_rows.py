"""Rows for the benchmarks that need many submissions at once (bench_gallery,
bench_moderation): plain dicts inserted with Core ``insert()`` in chunks, because going
through ingest for 100,000 items would take longer than the measurement itself.

Not a benchmark; imported by them (scripts/ is on their ``sys.path``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, text

from aggregator.models import MediaAsset, Submission, new_public_id


def submission_row(n: int, campaign_id: int, at: datetime, **columns: Any) -> dict[str, Any]:
    """Submission ``n`` of ``campaign_id``, pending, posted ``at``; ``columns`` override."""
    return {
        "id": n,
        "public_id": new_public_id(),
        "campaign_id": campaign_id,
        "origin": "upload",
        "author_name": f"Person {n}",
        "text": "We remember. " * (1 + n % 5),
        "language": ("ru", "kk", "en", "he")[n % 4],
        "hashtags": ["weremember"],
        "consent": ["projection", "web"],
        "status": "pending",
        "sensitive": False,
        "flags": [],
        "approvals": [],
        "extra": {},
        "posted_at": at,
        "created_at": at,
        **columns,
    }


def asset_row(n: int, at: datetime) -> dict[str, Any]:
    """The one image of submission ``n``: a 1440×1080 slide and its thumbnail (no files)."""
    key = f"{n % 256:02x}/{n:030x}"
    return {
        "id": n,
        "submission_id": n,
        "position": 0,
        "sha256": f"{n:064x}",
        "phash": n,
        "width": 1440,
        "height": 1080,
        "color": "#6b4e2e",
        "source_format": "JPEG",
        "alt_text": f"Person {n} holds a sign that says We Remember.",
        "keys": {"slide": key + ".jpg", "thumb": key[:-1] + "t.jpg"},
        "slide_bytes": 200_000,
        "created_at": at,
    }


def insert_rows(
    engine: Engine, submissions: list[dict[str, Any]], assets: list[dict[str, Any]]
) -> None:
    """Insert both lists in chunks of 5,000 in one transaction; ANALYZE on PostgreSQL."""
    with engine.begin() as conn:
        for start in range(0, len(submissions), 5000):
            conn.execute(insert(Submission.__table__), submissions[start : start + 5000])  # type: ignore[attr-defined]
            conn.execute(insert(MediaAsset.__table__), assets[start : start + 5000])  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
