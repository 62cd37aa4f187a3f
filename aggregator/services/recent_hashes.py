"""The campaign's recent image hashes that new images are compared with, kept per process.

Every page that ingest stores with images (a group of uploads, a collector's page) compares
them with the campaign's ``WINDOW`` most recent images. Reading those for every page took
40 ms of CPU with 20,000 images (SQLite, this project's machine), all of it in a worker
thread holding the GIL the event loop receiving uploads waits for. Here each process keeps
the window, indexed (``media.dedup.HashWindow``: comparing one image with 20,000 by a scan
took another 2.6 ms), and reads only what is new since it last looked. At most every
``RESCAN_SECONDS`` it also reads the last ``RESCAN`` ids again: on PostgreSQL a transaction
can commit after another that took later ids, and SQLite gives the id of a deleted newest
row to the next one; such images are compared with from the next rescan on. (Reading those
1,000 rows for every page cost 2–3 ms in the write transaction that uploads wait on.)

Images are deleted too (a withdrawal, a takedown, retention): a kept hash may be gone. A
match found here is therefore checked against the database before it is written
(``existing``), and a vanished image is forgotten and the comparison made again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from time import monotonic
from typing import Final

from sqlmodel import Session, col, select

from aggregator.db import PerEngine, engine_of
from aggregator.media.dedup import HashWindow
from aggregator.models import Campaign, MediaAsset, Submission

# How many of the campaign's most recent images new ones are compared with.
WINDOW: Final = 20_000
# Ids below the highest one seen that a rescan reads again (see the module docstring).
RESCAN: Final = 1_000
# How often those ids are read again, at most (per campaign and process).
RESCAN_SECONDS: Final = 1.0


@dataclass
class _Kept:
    window: HashWindow = field(default_factory=HashWindow)
    upto: int = 0  # the highest asset id read
    rescanned_at: float = -RESCAN_SECONDS  # monotonic time of the last rescan
    lock: threading.Lock = field(default_factory=threading.Lock)


_KEPT: PerEngine[dict[int, _Kept]] = PerEngine(lambda _engine: {})


class PageHashes:
    """What one page's new images are compared with: the campaign's kept window, shared by
    the process's pages and read under its lock, and the images this page has inserted."""

    def __init__(self, kept: _Kept) -> None:
        self._kept = kept
        self._own = HashWindow()

    def duplicate_of(self, sha256: str, phash: int, max_distance: int) -> int | None:
        """The asset an image repeats: the same sha256, else the closest pHash within
        ``max_distance`` bits (the newest of equals); None if none."""
        with self._kept.lock:
            shared = self._kept.window.best_match(sha256, phash, max_distance)
        own = self._own.best_match(sha256, phash, max_distance)
        found = [match for match in (shared, own) if match is not None]
        return min(found, key=lambda match: (match[0], -match[1]))[1] if found else None

    def add_own(self, asset_id: int, phash: int, sha256: str) -> None:
        """An image this page inserted (later images of the page are compared with it)."""
        self._own.add(asset_id, phash, sha256)

    def is_own(self, asset_id: int) -> bool:
        """Whether this page inserted ``asset_id`` (so it exists)."""
        return asset_id in self._own

    def __contains__(self, asset_id: object) -> bool:
        """Whether images are compared with ``asset_id``."""
        with self._kept.lock:
            return asset_id in self._kept.window or asset_id in self._own


def recent_hashes(session: Session, campaign: Campaign) -> PageHashes:
    """The campaign's ``WINDOW`` most recent images as of this session, for one page."""
    assert campaign.id is not None
    kept = _KEPT(engine_of(session)).setdefault(campaign.id, _Kept())
    with kept.lock:
        now = monotonic()
        above = kept.upto
        if now - kept.rescanned_at >= RESCAN_SECONDS:
            above, kept.rescanned_at = max(kept.upto - RESCAN, 0), now
        fresh = _read(session, campaign.id, above=above)
        # Above ``above`` the kept window becomes what the database has now: a row gone
        # from there is gone here, a late or reused id gets its current hashes.
        window = kept.window
        read = {asset_id for asset_id, _phash, _sha in fresh}
        for asset_id in window.ids_above(above):
            if asset_id not in read:
                window.remove(asset_id)
        window.add_many(row for row in fresh if window.row(row[0]) != (row[1], row[2]))
        window.keep_newest(WINDOW)
        if fresh:
            kept.upto = max(kept.upto, fresh[0][0])
    return PageHashes(kept)


def forget(session: Session, campaign: Campaign, asset_ids: Iterable[int]) -> None:
    """Drop images found to be gone from this process's window of the campaign."""
    kept = _KEPT(engine_of(session)).get(campaign.id or 0)
    if kept is not None:
        with kept.lock:
            for asset_id in set(asset_ids):
                kept.window.remove(asset_id)


def existing(session: Session, asset_ids: Sequence[int]) -> set[int]:
    """Which of ``asset_ids`` still exist (one query)."""
    if not asset_ids:
        return set()
    found = session.exec(select(MediaAsset.id).where(col(MediaAsset.id).in_(set(asset_ids))))
    return {int(asset_id) for asset_id in found if asset_id is not None}


def _read(session: Session, campaign_id: int, *, above: int) -> list[tuple[int, int, str]]:
    # "+ 0" keeps SQLite from walking the campaign's index over every submission it has and
    # sorting what it finds (4.9 ms for 1,000 new images of 20,000; 1.2 ms this way): the
    # rows wanted are the newest ids, read along the primary key.
    query = (
        select(MediaAsset.id, MediaAsset.phash, MediaAsset.sha256)
        .join(Submission, col(Submission.id) == col(MediaAsset.submission_id))
        .where(col(Submission.campaign_id) + 0 == campaign_id, col(MediaAsset.id) > above)
        .order_by(col(MediaAsset.id).desc())
        .limit(WINDOW)
    )
    return [(int(i), int(p), str(s)) for i, p, s in session.exec(query) if i is not None]
