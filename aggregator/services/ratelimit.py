"""Fixed-window rate limits stored in the database, so every worker process shares them.

``hit`` counts one attempt with a single atomic upsert (``INSERT … ON CONFLICT DO UPDATE …
RETURNING``, on SQLite and PostgreSQL alike) and commits it at once: an attempt that fails
later in the request must still count.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from aggregator.errors import TooManyRequests
from aggregator.models import RateCounter, utcnow


def ip_bucket(address: str) -> str:
    """The unit a per-IP limit counts: the address itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:100] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # One household or phone usually owns a whole /64.
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _window_start(now: datetime, window_seconds: int) -> datetime:
    epoch = math.floor(now.timestamp() / window_seconds) * window_seconds
    return datetime.fromtimestamp(epoch, UTC)


def hit(
    session: Session,
    key: str,
    limit: int,
    window_seconds: int,
    *,
    now: datetime | None = None,
) -> None:
    """Count one attempt for ``key``; raise TooManyRequests past ``limit`` in the window.

    Commits the session (count first, decide after). The window is fixed and aligned to the
    epoch, so ``retry_after`` is the time left until the next window starts.
    """
    now = now or utcnow()
    start = _window_start(now, window_seconds)
    table = RateCounter.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).values(key=key[:200], window_start=start, count=1)
    same_window = table.c.window_start == stmt.excluded.window_start
    upsert = stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((same_window, table.c.count + 1), else_=1),
            "window_start": stmt.excluded.window_start,
        },
    ).returning(table.c.count)
    count = int(session.execute(upsert).scalar_one())
    session.commit()
    if count > limit:
        retry = (start + timedelta(seconds=window_seconds) - now).total_seconds()
        raise TooManyRequests(
            "Too many attempts. Please wait a few minutes and try again.",
            retry_after=max(1, math.ceil(retry)),
        )


def purge_expired(session: Session, *, older_than_seconds: int = 86400) -> int:
    """Delete counters whose window started long ago (a maintenance job); returns the count."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    result = session.execute(delete(RateCounter).where(col(RateCounter.window_start) < cutoff))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
