"""Staged photos: processed and stored while the participant is still filling in the form.

The upload page's script sends each photo on its own; the server keeps the derivatives as a
``StagedPhoto`` bound to the browser's CSRF cookie (``owner_of``) for ``STAGE_TTL``. The form
then names the staged photos by token. Rows and files never claimed are removed by
``sweep_staged``, which runs on every staging and from the maintenance job.
"""

from __future__ import annotations

import secrets
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Connection, Engine, delete, event
from sqlmodel import Session, col, select

from aggregator.db import PerEngine, engine_of
from aggregator.errors import AggregatorError
from aggregator.media import Derivative, ProcessedImage
from aggregator.media.storage import Storage, suffix_for
from aggregator.models import Campaign, StagedPhoto, utcnow
from aggregator.services.uploads_problems import MESSAGES, Problem
from aggregator.services.users import hash_token

STAGE_TTL: Final = timedelta(hours=1)
_WRITE_LOCKS = PerEngine(lambda _engine: threading.Lock())
_GUARD = threading.Lock()


@contextmanager
def write_lock(session: Session) -> Iterator[None]:
    """On SQLite, one upload write transaction at a time per process.

    SQLite has a single writer; waiting writers sleep in its busy handler with a backoff of
    up to 100 ms per try, which under 32 concurrent uploads cost seconds. Queuing on a lock
    wakes the next writer the moment the last one commits. PostgreSQL needs nothing.
    """
    engine = engine_of(session)
    if engine.dialect.name != "sqlite":
        yield
        return
    with _WRITE_LOCKS(engine):
        yield


@contextmanager
def counter_session(session: Session) -> Iterator[Session]:
    """A session for rate counters whose commits skip the disk flush on SQLite (call it
    holding ``write_lock``).

    Counters may lose their last increments in a power cut (WAL with synchronous=NORMAL
    stays consistent) but need not wait for fsync; that halves the time each upload holds
    SQLite's single write lock. The relaxed connection is kept for counting alone (one per
    engine, used under the write lock, closed when the engine is disposed): taking one from
    the pool and switching its pragma there and back for every upload was nine calls into
    SQLite in a worker thread instead of three, each a wait for the GIL the event loop holds.
    Elsewhere the given session is used as it is.
    """
    engine = engine_of(session)
    if engine.dialect.name != "sqlite":
        yield session
        return
    connection = _counter_connection(engine)
    try:
        with Session(bind=connection, expire_on_commit=False) as counters:
            yield counters
    except AggregatorError:
        raise  # a refusal (429) after a good count: the connection is fine
    except BaseException:
        with _GUARD:  # a failed count may have left it unusable: the next one opens anew
            _COUNTERS.pop(engine, None)
        _discard(connection)
        raise


# The kept counter connection of each engine (it refers to its engine, so it goes when the
# engine is disposed, not when the engine is forgotten).
_COUNTERS: weakref.WeakKeyDictionary[Engine, Connection] = weakref.WeakKeyDictionary()


def _counter_connection(engine: Engine) -> Connection:
    with _GUARD:
        connection = _COUNTERS.get(engine)
    if connection is not None and not connection.closed:
        return connection
    connection = engine.connect()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA synchronous=NORMAL")  # outside a transaction, as SQLite requires
    if not event.contains(engine, "engine_disposed", _close_counter_connection):
        event.listen(engine, "engine_disposed", _close_counter_connection)
    with _GUARD:
        _COUNTERS[engine] = connection
    return connection


def _close_counter_connection(engine: Engine) -> None:
    with _GUARD:
        connection = _COUNTERS.pop(engine, None)
    if connection is not None:
        _discard(connection)


def _discard(connection: Connection) -> None:
    connection.invalidate()  # never back to the pool: it is relaxed
    connection.close()


def owner_of(csrf_token: str) -> str:
    """The owner key of staged photos: a hash of the browser's CSRF cookie."""
    return hash_token(f"staged:{csrf_token}")


def stage_photo(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    owner: str,
    image: ProcessedImage,
    now: datetime | None = None,
) -> StagedPhoto:
    """Store a processed photo until the form is sent (or it expires)."""
    now = now or utcnow()
    session.commit()  # writes start a fresh transaction (see uploads.count_upload)
    sweep_staged(session=session, storage=storage, now=now, limit=50)
    derivatives = {
        style: {
            "key": storage.put(d.data, suffix=suffix_for(d.content_type)),
            "width": d.width,
            "height": d.height,
            "content_type": d.content_type,
        }
        for style, d in image.derivatives.items()
    }
    row = StagedPhoto(
        token=secrets.token_urlsafe(18),
        campaign_id=campaign.id,  # type: ignore[arg-type]
        owner_hash=owner,
        derivatives=derivatives,
        created_at=now,
        expires_at=now + STAGE_TTL,
        **image.columns(),
    )
    with write_lock(session):
        session.add(row)
        session.commit()
    return row


def load_staged(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    owner: str,
    tokens: Sequence[str],
    now: datetime | None = None,
) -> tuple[list[tuple[StagedPhoto, ProcessedImage]], list[Problem]]:
    """The caller's staged photos by token, in the given order, with their derivatives."""
    now = now or utcnow()
    wanted = list(dict.fromkeys(t for t in tokens if t))[:100]
    if not wanted:
        return [], []
    rows = session.exec(
        select(StagedPhoto).where(
            col(StagedPhoto.token).in_(wanted),
            StagedPhoto.owner_hash == owner,
            StagedPhoto.campaign_id == campaign.id,
            col(StagedPhoto.expires_at) > now,
        )
    ).all()
    by_token = {row.token: row for row in rows}
    found: list[tuple[StagedPhoto, ProcessedImage]] = []
    problems: list[Problem] = []
    for token in wanted:
        row = by_token.get(token)
        image = _reload(storage, row) if row is not None else None
        if row is None or image is None:
            problems.append(Problem("staged_missing", MESSAGES["staged_missing"], {}, "photos"))
        else:
            found.append((row, image))
    return found, problems


def _reload(storage: Storage, row: StagedPhoto) -> ProcessedImage | None:
    derivatives: dict[str, Derivative] = {}
    for style, info in row.derivatives.items():
        try:
            with storage.open(info["key"]) as handle:
                data = handle.read()
        except AggregatorError:
            return None
        derivatives[style] = Derivative(data, info["width"], info["height"], info["content_type"])
    return ProcessedImage(
        derivatives=derivatives,
        width=row.width,
        height=row.height,
        sha256=row.sha256,
        phash=row.phash,
        color=row.color,
        source_format=row.source_format,
    )


def delete_files(
    storage: Storage, rows: Sequence[StagedPhoto], *, keep: frozenset[str] | set[str] = frozenset()
) -> None:
    """Delete the staged photos' files, except the keys in ``keep``."""
    for row in rows:
        for info in row.derivatives.values():
            if info["key"] in keep:
                continue
            try:
                storage.delete(info["key"])
            except AggregatorError:
                continue


def sweep_staged(
    *, session: Session, storage: Storage, now: datetime | None = None, limit: int = 10_000
) -> int:
    """Delete expired staged photos and their files; returns how many."""
    now = now or utcnow()
    session.commit()  # writes start a fresh transaction (see uploads.count_upload)
    rows = session.exec(
        select(StagedPhoto).where(col(StagedPhoto.expires_at) <= now).limit(limit)
    ).all()
    session.commit()  # end the read: the caller's next write must start its own transaction
    if not rows:
        return 0
    ids = [row.id for row in rows]
    with write_lock(session):
        session.execute(delete(StagedPhoto).where(col(StagedPhoto.id).in_(ids)))
        session.commit()
    delete_files(storage, rows)  # after the commit: a crash leaves orphans, never dangling rows
    return len(rows)
