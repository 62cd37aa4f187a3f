"""Group commit of participant submissions: one transaction for every upload that is ready.

Under many concurrent uploads, fair bandwidth sharing makes them finish streaming together,
and each then had its own write transaction, in turn on SQLite's single writer. Most of a
transaction's cost is fixed (the campaign's rules, its recent image hashes, a multi-row
INSERT, a flush, the commit and its fsync), CPU time that the uploads still arriving compete
for (it runs in the upload worker, ``uploads_worker``, beside the web process receiving
them). ``ingest_page`` stores many items for about the cost of one (measured, 1,600×1,200
photo: 5.5 ms CPU for one, 1.3 ms each for eight), so submissions are written in groups:

* each submission is queued, then its thread waits for the turn (one group at a time per
  process; on SQLite the group also takes ``uploads_staging.write_lock``);
* whoever gets the turn writes *everything* queued so far in one transaction (the leader),
  and the others find their result ready when they get the turn (followers): no extra
  thread, no trip through the event loop;
* while other uploads are still on their way (arrived, their photos streaming in, being
  processed or written, but not queued yet; ``Arrivals``, counted by the web process in
  memory it shares with the upload worker, where this runs), the leader waits for them, at
  most ``LINGER_SECONDS``, rather than leave them groups of their own: the wait is what
  makes the groups big enough to be cheap (like PostgreSQL's ``commit_delay``). A lone
  upload, and a caller outside the web (a bulk import), never waits.

All or nothing holds per submission: if a group's transaction fails it is rolled back and
its submissions are written again one by one, so one bad submission fails alone and every
caller gets its own result or exception. Files are written before (``uploads._prestore``),
outside any transaction, as before: a crash leaves files no row refers to, which
``maintenance.sweep_media`` removes, never a row without its file.
"""

from __future__ import annotations

import ctypes
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, delete
from sqlmodel import Session, col

from aggregator.db import PerEngine, engine_of
from aggregator.media.storage import Storage
from aggregator.models import Campaign, StagedPhoto
from aggregator.services.ingest import Incoming, Ingested, ingest_page
from aggregator.services.uploads_problems import MESSAGES, Problem, SubmissionRefused
from aggregator.services.uploads_staging import write_lock

# More submissions than this wait for the next group (bounds one transaction's length).
MAX_GROUP = 64
# How long a group waits for uploads still on their way. Under 32 concurrent 8 MB uploads
# (bench_upload) a wait made groups of ~8 instead of ~4 and cut the group commit's CPU per
# upload from ~2.7 to ~1.7 ms (thread time). Since the commit runs in the upload worker, that
# CPU no longer takes the GIL from the event loop receiving photos, and a shorter wait lets
# a participant's answer go sooner: 20 ms was the best of 5, 20 and 50 ms (paired runs,
# 10 rounds: 659-708 MB/s against 616-672 and 654-671). A participant does not feel 20 ms.
LINGER_SECONDS = 0.02
LINGER_POLL = 0.005  # each look wakes a thread, which takes a core from the event loop


@dataclass(eq=False)
class Job:
    """One submission waiting to be written: what ``ingest`` needs, and then its outcome.

    ``prestored`` maps each derivative's bytes to the key of the file already written for
    it (this submission's own files, or its staged photos' files). Once done, ``used`` holds
    the keys that rows of its group refer to (a key is only ever given to one submission).
    """

    campaign: Campaign
    incoming: Incoming
    prestored: Mapping[bytes, str]
    with_receipt: bool = True
    near_distance: int = 8
    staged_ids: Sequence[int] = ()
    done: bool = False
    result: Ingested | None = None
    error: BaseException | None = None
    used: set[str] = field(default_factory=set)

    def outcome(self) -> Ingested:
        """The stored submission, or the exception that refused it."""
        if self.error is not None:
            raise self.error
        assert self.result is not None  # a done job has one or the other
        return self.result


class _Prestored:
    """A Storage whose ``put`` hands out the pre-written keys in the order ``ingest`` stores.

    ``ingest_page`` stores the items' images in order, each image's derivatives in order;
    ``expected`` lists (bytes, key) in that same order, so that two submissions of identical
    photos (same bytes) still get their own files. An entry ``ingest`` skipped (an image over
    its per-item limit) is passed over; bytes not expected at all are written as new files.
    Keys handed out are collected in ``used``.
    """

    def __init__(self, storage: Storage, expected: Sequence[tuple[bytes, str]]) -> None:
        self.storage = storage
        self.expected = deque(expected)
        self.used: list[str] = []

    def put(self, data: bytes, *, suffix: str) -> str:
        """The next pre-written key for exactly these bytes, or a new file."""
        while self.expected:
            wanted, key = self.expected.popleft()
            if wanted is data or wanted == data:
                self.used.append(key)
                return key
        key = self.storage.put(data, suffix=suffix)
        self.used.append(key)
        return key

    def open(self, key: str) -> BinaryIO:
        """See Storage."""
        return self.storage.open(key)

    def exists(self, key: str) -> bool:
        """See Storage."""
        return self.storage.exists(key)

    def delete(self, key: str) -> None:
        """See Storage."""
        self.storage.delete(key)

    def path(self, key: str) -> Path:
        """See Storage."""
        return self.storage.path(key)

    def iter_keys(self) -> Iterator[str]:
        """See Storage."""
        return self.storage.iter_keys()

    def content_type(self, key: str) -> str:
        """See Storage."""
        return self.storage.content_type(key)


def _expected(job: Job) -> list[tuple[bytes, str]]:
    return [
        (derivative.data, job.prestored[derivative.data])
        for item in job.incoming.images
        for derivative in item.image.derivatives.values()
    ]


class Arrivals:
    """How many uploads are on their way: arrived, and not answered yet.

    ``shared`` holds the count: by default a plain number of this process; the upload worker
    gives a ``multiprocessing.RawValue`` instead, so that the web process, where uploads
    arrive, counts them without a message, and the worker, where the group commit waits for
    them, reads it. Counted from any thread; the lock is only held for an addition.
    """

    def __init__(self, shared: Any = None) -> None:
        self.shared = shared if shared is not None else ctypes.c_long(0)
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """Uploads on their way now."""
        return int(self.shared.value)

    @contextmanager
    def in_progress(self) -> Iterator[None]:
        """Count an upload from its arrival until it is answered (around its whole request)."""
        with self._lock:
            self.shared.value += 1
        try:
            yield
        finally:
            with self._lock:
                self.shared.value -= 1


class GroupCommitter:
    """Writes queued submissions of one engine in groups (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)
        self.arrivals = Arrivals()  # the upload worker replaces it with the web process's
        self._queue: list[Job] = []
        self._changed = threading.Condition()  # guards the queue
        self._turn = threading.Lock()  # one group at a time (and SQLite's write lock in it)

    def _everyone_queued(self) -> bool:
        # Every upload on its way has queued its job (a queued one is on its way too, until
        # it is answered); callers that never arrived (a bulk import) count as queued.
        return self.arrivals.count <= len(self._queue) or len(self._queue) >= MAX_GROUP

    def run(self, job: Job, storage: Storage) -> Ingested:
        """Queue ``job``, wait for it to be written (by this thread or another), return it."""
        with self._changed:
            self._queue.append(job)
            self._changed.notify_all()
        with self._turn:
            while not job.done:
                with self._changed:
                    self._linger()
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._write(group, storage)
        return job.outcome()

    def _linger(self) -> None:
        # Arrivals and answers change the count in another process, which cannot notify
        # us: look again every LINGER_POLL (a new job in the queue notifies at once).
        deadline = time.monotonic() + LINGER_SECONDS
        while not self._everyone_queued():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.wait(min(left, LINGER_POLL))

    def _write(self, group: list[Job], storage: Storage) -> None:
        try:
            try:
                self._transaction(group, storage)
            except Exception as exc:
                if len(group) == 1:
                    group[0].error = exc
                else:  # find which one failed: each on its own
                    for job in group:
                        self._write([job], storage)
        except BaseException as exc:  # interrupted: nobody may wait for a result forever
            for job in group:
                if not job.done and job.error is None and job.result is None:
                    job.error = exc
            raise
        finally:
            for job in group:
                job.done = True

    def _transaction(self, group: Sequence[Job], storage: Storage) -> None:
        engine = self._engine()
        assert engine is not None  # the engine outlives the requests that use it
        with Session(engine, expire_on_commit=False) as session, write_lock(session):
            results: dict[int, tuple[Ingested, list[str]]] = {}
            for jobs in _grouped(group):
                first = jobs[0]
                stored = _Prestored(storage, [pair for job in jobs for pair in _expected(job)])
                ingested = ingest_page(
                    session=session,
                    storage=stored,
                    campaign=first.campaign,
                    incomings=[job.incoming for job in jobs],
                    with_receipt=[job.with_receipt for job in jobs],
                    near_distance=first.near_distance,
                )
                for job, result in zip(jobs, ingested, strict=True):
                    results[id(job)] = (result, stored.used)
            for job in group:
                _take_staged(session, job.staged_ids)
            session.commit()
        for job in group:
            job.result, used = results[id(job)]
            job.used.update(used)


def _take_staged(session: Session, staged_ids: Sequence[int]) -> None:
    """Delete a submission's staged rows, which its files now belong to; SubmissionRefused
    (409) when another submission took one first (the same form sent twice at once), so that
    two submissions never share files."""
    if not staged_ids:
        return
    taken = session.execute(delete(StagedPhoto).where(col(StagedPhoto.id).in_(staged_ids)))
    if taken.rowcount != len(set(staged_ids)):  # type: ignore[attr-defined]
        problem = Problem("staged_sent", MESSAGES["staged_sent"], field="photos", status=409)
        raise SubmissionRefused([problem])


def _grouped(group: Sequence[Job]) -> list[list[Job]]:
    """Jobs by campaign (and duplicate distance), in queue order."""
    by_key: dict[tuple[int | None, int], list[Job]] = {}
    for job in group:
        by_key.setdefault((job.campaign.id, job.near_distance), []).append(job)
    return list(by_key.values())


_COMMITTERS = PerEngine(GroupCommitter)


def committer_for(bind: Session | Engine) -> GroupCommitter:
    """The group committer of the engine (or the session's; one per engine and process)."""
    return _COMMITTERS(bind if isinstance(bind, Engine) else engine_of(bind))
