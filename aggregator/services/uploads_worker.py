"""The upload worker: a process of its own for the steps of an upload that write.

The web process receives the photos (parsing, spooling to anonymous temporary files); the
steps that write (the rate count, processing, the derivatives' files, the group commit of
``uploads_commit``) run on this worker's threads. In the web process those threads held the
GIL for SQLAlchemy and SQLite, and the event loop receiving the other uploads waited for it:
under 32 concurrent 8 MB uploads (bench_upload, 10 rounds) the web process with those steps
left out ran as fast as the minimal endpoint (884 against 863 MB/s), with them 1.3× slower.
Here they run beside the loop without taking its GIL; so does the pure-Python part of
processing a photo.

Protocol: one ``SOCK_SEQPACKET`` socket pair, one pickled message per packet.

* web → worker ``(id, step, kwargs, generation)``: run ``STEPS[step]`` with a new session and
  ``kwargs``, after letting kept campaigns go if ``generation`` (``campaigns.kept_generation``
  of the web process) moved. A received file travels as its descriptor (``SCM_RIGHTS``) with
  its name and size: the photo's bytes are never copied between the processes. A message
  over ``MAX_MESSAGE`` is refused in the web process (``FormTooLarge``, 413).
* worker → web ``(id, ok, value)``: the step's result, or the ``AggregatorError`` it raised
  (anything else is logged in the worker and becomes ``UploadStepFailed``, a 500).

Replies are read on the event loop itself (``add_reader``): a thread reading them would take
the GIL from the loop twice an upload. Uploads on their way (for the group commit's wait) are
counted in shared memory (``uploads_commit.Arrivals``), with no message at all.

The worker starts with the first upload of an event loop (``spawn``: a fresh interpreter,
which inherits no threads, locks or database connections of the web process) and again after
it died; the calls it was running then fail with ``UploadsUnavailable`` (503, "please send
again"). ``stop`` closes the socket: the worker
finishes its steps and exits, as it does when the web process dies.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import pickle
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from sqlmodel import Session

from aggregator.config import Settings
from aggregator.errors import AggregatorError
from aggregator.services import campaigns
from aggregator.services import uploads as up
from aggregator.services.uploads_commit import Arrivals, committer_for
from aggregator.services.uploads_problems import UploadsUnavailable
from aggregator.services.uploads_stream import ReceivedFile, UnsupportedBody, run_as_batch

log = logging.getLogger(__name__)

# One message is one packet: arguments and results are small (rows, not photos: the files
# travel as descriptors), well under the kernel's default socket buffer (~208 KiB).
MAX_MESSAGE: Final = 192 * 1024
MAX_FILES: Final = 64  # descriptors in one message (a submission has at most a few dozen)


@dataclass(frozen=True)
class SentForm:
    """A sent form's outcome, in plain values (it crosses to the web process: rows would be
    slow to pickle): stored with ``receipt_token``, or refused with ``problems``, keeping
    ``staged`` (token, thumbnail key) photos for the form (see ``uploads.Finished``)."""

    receipt_token: str | None = None
    public_id: str = ""
    status: str = ""
    problems: tuple[up.Problem, ...] = ()
    staged: tuple[tuple[str, str | None], ...] = ()


def _open(
    *, session: Session, settings: Settings, slug: str, ip: str, photo: bool = False
) -> tuple[str, ...]:
    """``open_upload``; the campaign's languages."""
    campaign = up.open_upload(session=session, settings=settings, slug=slug, ip=ip, photo=photo)
    return tuple(campaign.languages)


def _stage(*, session: Session, slug: str, **kwargs: Any) -> tuple[str, str]:
    """``process_and_stage``; the staged photo's token and thumbnail key."""
    campaign = campaigns.kept_campaign(session=session, slug=slug)
    row = up.process_and_stage(session=session, campaign=campaign, **kwargs)
    return row.token, row.derivatives["thumb"]["key"]


def _store(*, session: Session, slug: str, **kwargs: Any) -> SentForm:
    """``finish_form``, as a SentForm."""
    campaign = campaigns.kept_campaign(session=session, slug=slug)
    finished = up.finish_form(session=session, campaign=campaign, **kwargs)
    if finished.ingested is not None:
        submission = finished.ingested.submission
        return SentForm(
            finished.ingested.receipt_token, submission.public_id, submission.status.value
        )
    staged = [(row.token, row.derivatives.get("thumb", {}).get("key")) for row in finished.staged]
    return SentForm(problems=tuple(finished.problems), staged=tuple(staged))


# The steps the worker runs, and what each gets besides ``session`` and the caller's kwargs.
STEPS: Final[dict[str, tuple[Callable[..., Any], tuple[str, ...]]]] = {
    "open": (_open, ("settings",)),
    "stage": (_stage, ("storage", "processor", "gate")),
    "store": (_store, ("storage", "settings", "processor", "gate")),
}


class UploadStepFailed(Exception):
    """A step failed in the worker with an unexpected error (a bug: 500, logged there)."""


class FormTooLarge(UnsupportedBody):
    """A form whose fields would not fit in one message to the worker (413); only a robot
    sends one (a person's form is a few kilobytes), and the worker never sees it."""

    status_code = 413


class UploadWorker:
    """The web process's handle on its upload worker (one per application and event loop)."""

    def __init__(self, settings: Settings) -> None:
        up.tune_allocator()  # for the buffers of the uploads this process receives
        self._settings = settings
        self._arrivals = Arrivals(multiprocessing.RawValue("l", 0))  # shared with the worker
        self._guard = threading.Lock()
        self._channels: dict[asyncio.AbstractEventLoop, _Channel] = {}

    async def call(self, step: str, /, **kwargs: Any) -> Any:
        """Run ``step`` in the worker with ``kwargs`` and return its result (or raise what it
        raised). A ``ReceivedFile`` among them, or a list of them, is handed over once it is
        fully written."""
        descriptors: list[int] = []
        for name, value in kwargs.items():
            if isinstance(value, ReceivedFile):
                kwargs[name] = await _hand_over(value, descriptors)
            elif isinstance(value, list) and value and isinstance(value[0], ReceivedFile):
                kwargs[name] = [await _hand_over(file, descriptors) for file in value]
        message = (step, kwargs, campaigns.kept_generation())
        ok, value = await self._channel().call(message, descriptors)
        if not ok:
            raise value
        return value

    def in_progress(self) -> AbstractContextManager[None]:
        """Around an upload from its arrival until it is answered (see ``uploads_commit``)."""
        return self._arrivals.in_progress()

    @property
    def uploads_in_progress(self) -> int:
        """Uploads that arrived and are not answered yet."""
        return self._arrivals.count

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers once their current steps are done (started again if needed)."""
        with self._guard:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.stop(timeout)

    def _channel(self) -> _Channel:
        loop = asyncio.get_running_loop()
        with self._guard:
            channel = self._channels.get(loop)
            if channel is None or channel.dead:
                channel = self._channels[loop] = _Channel.start(
                    loop, self._settings, self._arrivals, up.make_processor
                )
            return channel


@dataclass(frozen=True)
class _SentFile:
    """A received file in a message: its description; its descriptor travels beside it."""

    index: int  # of the descriptor in the message
    field_name: str
    filename: str
    content_type: str
    size: int

    def receive(self, descriptors: Sequence[int]) -> ReceivedFile:
        """The file again, in the worker, reading the descriptor received."""
        return ReceivedFile.from_descriptor(
            descriptors[self.index],
            field_name=self.field_name,
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
        )


async def _hand_over(file: ReceivedFile, descriptors: list[int]) -> _SentFile:
    await file.written()
    descriptors.append(file.fileno())
    return _SentFile(
        len(descriptors) - 1, file.field_name, file.filename, file.content_type, file.size
    )


class _Channel:
    """One worker process, its socket, and the calls of one event loop waiting for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, process: Any, sock: socket.socket):
        self.loop = loop
        self.process = process
        self.sock = sock
        self.dead = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._room: asyncio.Future[None] | None = None  # set while a call waits to send
        loop.add_reader(sock.fileno(), self._receive)

    @classmethod
    def start(
        cls,
        loop: asyncio.AbstractEventLoop,
        settings: Settings,
        arrivals: Arrivals,
        make_processor: up.ProcessorFactory,
    ) -> _Channel:
        """Start a worker process. ``make_processor`` travels by reference: it must be a
        module-level function (a benchmark replaces ``uploads.make_processor``)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = multiprocessing.get_context("spawn").Process(
            target=serve,
            args=(settings, theirs, arrivals.shared, make_processor),
            name="upload-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        ours.setblocking(False)
        return cls(loop, process, ours)

    async def call(self, message: tuple[Any, ...], descriptors: Sequence[int]) -> Any:
        """Send ``(id, *message)`` with ``descriptors``; wait for the reply ``(ok, value)``."""
        ident = next(self._ids)
        data = pickle.dumps((ident, *message), protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_MESSAGE:
            raise FormTooLarge("The form's fields are too large to be read.")
        future = self._pending[ident] = self.loop.create_future()
        try:
            while True:
                if self.dead:
                    raise UploadsUnavailable("The upload service stopped.")
                try:
                    socket.send_fds(self.sock, [data], list(descriptors))
                    break
                except BlockingIOError:  # the worker is behind: wait for room
                    await self._writable()
                except OSError as exc:
                    self._gone(exc)
            return await future
        finally:
            self._pending.pop(ident, None)

    def stop(self, timeout: float) -> None:
        """Close our end; the worker finishes its steps and exits (killed after ``timeout``)."""
        self._gone(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def _writable(self) -> asyncio.Future[None]:
        if self._room is None or self._room.done():
            self._room = self.loop.create_future()
            self.loop.add_writer(self.sock.fileno(), self._on_room)
        return self._room

    def _on_room(self) -> None:
        self.loop.remove_writer(self.sock.fileno())
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError as exc:
                self._gone(exc)
                return
            if not data:  # the worker exited
                self._gone(None)
                return
            ident, ok, value = pickle.loads(data)
            future = self._pending.pop(ident, None)
            if future is not None and not future.done():  # not cancelled meanwhile
                future.set_result((ok, value))

    def _gone(self, error: OSError | None) -> None:
        if self.dead:
            return
        self.dead = True
        if error is not None:
            log.warning("upload worker unreachable (%s); the next upload starts another", error)
        if not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
        self.sock.close()
        if self._room is not None and not self._room.done():
            self._room.set_result(None)  # the call waiting to send sees the worker gone
        gone = UploadsUnavailable("The upload service stopped.")
        for future in self._pending.values():
            if not future.done():
                future.set_result((False, gone))
        self._pending.clear()


# -- the worker process ------------------------------------------------------------------


def serve(
    settings: Settings, sock: socket.socket, arrivals: Any, make_processor: up.ProcessorFactory
) -> None:
    """The worker process: run steps on ``UPLOAD_THREADS`` threads until the socket closes."""
    from aggregator.db import make_engine
    from aggregator.media.storage import LocalStorage

    logging.basicConfig(level=logging.WARNING)
    run_as_batch()  # photos are batch work: the web process's event loop comes first
    up.tune_allocator()
    engine = make_engine(settings.effective_database_url)
    committer_for(engine).arrivals = Arrivals(arrivals)
    context = {
        "settings": settings,
        "storage": LocalStorage(settings.effective_media_dir),
        "processor": make_processor(settings),
        "gate": threading.BoundedSemaphore(up.PROCESSING_CONCURRENCY),
    }
    sending = threading.Lock()
    generation: int | None = None  # the web process's kept_generation last seen

    def reply(ident: int, ok: bool, value: Any) -> None:
        try:
            data = pickle.dumps((ident, ok, value), protocol=pickle.HIGHEST_PROTOCOL)
            if len(data) > MAX_MESSAGE:
                raise ValueError(f"{len(data)} bytes")
        except Exception as exc:  # an outcome that cannot travel is a bug, said as such
            log.exception("upload step %s: its outcome cannot be sent back", ident)
            data = pickle.dumps((ident, False, UploadStepFailed(repr(exc))))
        with sending:
            try:
                sock.send(data)
            except OSError:  # the web process is gone: nobody waits for this any more
                pass

    def run(
        ident: int, step: str, kwargs: dict[str, Any], seen: int, files: list[ReceivedFile]
    ) -> None:
        nonlocal generation
        fn, extras = STEPS[step]
        try:
            if seen != generation:  # a campaign was saved in the web process since
                campaigns.forget_kept()
                generation = seen
            with Session(engine, expire_on_commit=False) as session:
                value = fn(session=session, **kwargs, **{name: context[name] for name in extras})
        except AggregatorError as exc:
            reply(ident, False, exc)
        except Exception as exc:
            log.exception("upload step %r failed", step)
            reply(ident, False, UploadStepFailed(f"{step}: {exc!r}"))
        else:
            reply(ident, True, value)
        finally:
            for file in files:
                file.release()

    with ThreadPoolExecutor(up.UPLOAD_THREADS, thread_name_prefix="upload-step") as pool:
        for ident, step, kwargs, seen, files in _requests(sock):
            pool.submit(run, ident, step, kwargs, seen, files)
    engine.dispose()


def _requests(
    sock: socket.socket,
) -> Iterator[tuple[int, str, dict[str, Any], int, list[ReceivedFile]]]:
    """The calls arriving on ``sock``, with their files, until it closes."""
    while True:
        try:
            data, descriptors, _flags, _address = socket.recv_fds(sock, MAX_MESSAGE, MAX_FILES)
        except OSError:
            return
        if not data:
            return
        ident, step, kwargs, seen = pickle.loads(data)
        files: list[ReceivedFile] = []
        for name, value in kwargs.items():
            if isinstance(value, _SentFile):
                kwargs[name] = value.receive(descriptors)
                files.append(kwargs[name])
            elif isinstance(value, list) and value and isinstance(value[0], _SentFile):
                kwargs[name] = [sent.receive(descriptors) for sent in value]
                files.extend(kwargs[name])
        yield ident, step, kwargs, seen, files
