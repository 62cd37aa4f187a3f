"""Sliding-window rate limits stored in the database, so every worker process shares them.

Each key keeps the attempts of the current fixed window and of the one before; the limit
applies to the previous window's count weighted by how much of it still overlaps the last
``window_seconds``, plus the current count. Unlike a plain fixed window, this allows no
double burst across a window boundary (25 attempts at 4:59 and 25 more at 5:00).

``hit`` counts one attempt with a single atomic upsert (``INSERT … ON CONFLICT DO UPDATE …
RETURNING``, on SQLite and PostgreSQL alike) and commits it at once: an attempt that fails
later in the request must still count.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import Executable, bindparam, case, delete
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
    """Count one attempt for ``key``; raise TooManyRequests past ``limit`` in the sliding window.

    Commits the session (count first, decide after). ``retry_after`` is the time until the
    weighted count falls back to the limit.
    """
    now = now or utcnow()
    window = timedelta(seconds=window_seconds)
    start = _window_start(now, window_seconds)
    params = {"key": key[:200], "start": start, "previous_start": start - window}
    upsert = _upsert(session.get_bind().dialect.name)
    count, previous = session.execute(upsert, params).one()
    session.commit()
    into_window = (now - start) / window
    if previous * (1 - into_window) + count > limit:
        raise TooManyRequests(
            "Too many attempts. Please wait a few minutes and try again.",
            retry_after=_retry_after(count, previous, limit, into_window, window_seconds),
        )


@functools.cache
def _upsert(dialect: str) -> Executable:
    """The counting upsert, built once per dialect with bound parameters ``key``, ``start``
    (the current window) and ``previous_start`` (the one before); returns the new
    ``count`` and ``previous``.

    Building the statement for every attempt took two thirds of an upload's count (0.65 ms
    of CPU, 0.21 ms without), time a worker thread holds the GIL that the event loop
    receiving the other uploads waits for.
    """
    table = RateCounter.__table__  # type: ignore[attr-defined]
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    window_type = table.c.window_start.type
    stmt = insert(table).values(
        key=bindparam("key", type_=table.c.key.type),
        window_start=bindparam("start", type_=window_type),
        count=1,
        previous=0,
    )
    same_window = table.c.window_start == stmt.excluded.window_start
    previous_window = table.c.window_start == bindparam("previous_start", type_=window_type)
    # SET expressions read the row as it was, so "previous" takes the old count.
    return stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((same_window, table.c.count + 1), else_=1),
            "previous": case(
                (same_window, table.c.previous), (previous_window, table.c.count), else_=0
            ),
            "window_start": stmt.excluded.window_start,
        },
    ).returning(table.c.count, table.c.previous)


def _retry_after(
    count: int, previous: int, limit: int, into_window: float, window_seconds: int
) -> int:
    """Whole seconds until one more attempt would pass, if none is made meanwhile.

    With room left in the current window, that is when the previous window has faded enough;
    otherwise it is in the next window, once this window's count has faded enough.
    """
    if count + 1 <= limit:  # refused, so previous > 0
        wait = 1 - (limit - count - 1) / previous - into_window
    else:
        wait = 1 - into_window + min(1.0, max(0.0, 1 - (limit - 1) / count))
    return max(1, math.ceil(wait * window_seconds))


def purge_expired(session: Session, *, older_than_seconds: int = 86400) -> int:
    """Delete counters whose window started long ago (a maintenance job); returns the count."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    result = session.execute(delete(RateCounter).where(col(RateCounter.window_start) < cutoff))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
