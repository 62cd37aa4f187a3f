"""Streaming ``multipart/form-data`` reception with hard caps, for participant uploads.

Starlette's ``request.form()`` spools every file whole before the application sees it, so a
16 MiB cap could only be checked after a 2 GB body had been written to disk. Here the body is
parsed as it arrives: a file part that passes ``max_file_bytes`` raises ``UploadTooLarge`` at
once and nothing more is read; the ``(max_files + 1)``-th file is refused on its first byte.
Files go to anonymous temporary files (memory stays flat however many uploads run at once);
text fields are capped too. ``before_files`` runs once, when the first file part begins (or at
the end when there is none), so a form without its CSRF token is refused before any photo is
read. The event loop only parses: the received bytes are written to the temporary files by a
background thread (``_Writer``).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import os
import queue
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Final

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

from aggregator.errors import AggregatorError, InvalidInput, MediaError

# Received bytes go to the file in one ``pwritev`` per this many bytes (or ``WRITE_PIECES``
# pieces), not one write per socket read (~64 KiB): fewer system calls and thread hand-overs,
# and no copy (the pieces are the received chunks themselves).
WRITE_BYTES: Final = 512 * 1024
WRITE_PIECES: Final = 64  # well under IOV_MAX (1024), however small the chunks are
# Received bytes waiting for the writer thread, at most (memory stays bounded when the disk
# is slower than the network); past it, the event loop writes them itself, as it used to.
QUEUE_BYTES: Final = 32 * 1024 * 1024
MAX_FIELD_BYTES: Final = 16 * 1024
MAX_FIELDS: Final = 200
# Headers, boundaries and text fields on top of the files themselves.
ENVELOPE_BYTES: Final = 64 * 1024


class UploadTooLarge(MediaError):
    """A file (or the whole body) passed its cap; reading stopped there (413)."""

    status_code = 413
    code = "too_large"

    def __init__(self, message: str, *, filename: str = "", limit: int = 0) -> None:
        super().__init__(message)
        self.filename = filename
        self.limit = limit


class TooManyFiles(InvalidInput):
    """More files than one submission may carry (422)."""

    code = "too_many_files"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message, field="photos")
        self.limit = limit


class UnsupportedBody(AggregatorError):
    """The body is not ``multipart/form-data`` (415)."""

    status_code = 415
    code = "unsupported_body"


class IncompleteUpload(AggregatorError):
    """The body ended before the form did (connection lost, or malformed) (400)."""

    status_code = 400
    code = "incomplete_upload"


@dataclass
class ReceivedFile:
    """One uploaded file, in an anonymous temporary file; ``read()`` loads it (call it where
    memory is budgeted)."""

    field_name: str
    filename: str
    content_type: str
    size: int = 0
    spool: IO[bytes] | None = field(default=None, repr=False)  # made by the first write
    _pending: list[memoryview] = field(default_factory=list, repr=False)
    _pending_bytes: int = field(default=0, repr=False)
    _handed: int = field(default=0, repr=False)  # bytes given to writes: the next offset
    _writing: int = field(default=0, repr=False)  # writes not yet done (guarded by _DONE)
    _error: OSError | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)
    _waiter: asyncio.Future[None] | None = field(default=None, repr=False)  # see written()

    @classmethod
    def from_descriptor(
        cls, fd: int, *, field_name: str, filename: str, content_type: str, size: int
    ) -> ReceivedFile:
        """A file received by another process, whose temporary file's descriptor was passed
        here (``uploads_worker``); ``release`` closes it."""
        return cls(field_name, filename, content_type, size, os.fdopen(fd, "rb", buffering=0))

    def release(self) -> None:
        """Close this process's descriptor of a file made by ``from_descriptor``."""
        if self.spool is not None:
            self.spool.close()

    def write(self, piece: memoryview) -> None:
        """Append received bytes (kept, not copied, until there are enough to write)."""
        if not piece:
            return
        self._pending.append(piece)
        self._pending_bytes += len(piece)
        if self._pending_bytes >= WRITE_BYTES or len(self._pending) >= WRITE_PIECES:
            self.flush()

    def flush(self) -> None:
        """Hand what is pending to the writer thread; OSError if an earlier write failed."""
        self._raise_error()
        pending, size = self._pending, self._pending_bytes
        if not pending:
            return
        self._pending, self._pending_bytes = [], 0
        offset, self._handed = self._handed, self._handed + size
        _writer().write(self, pending, offset, size)

    async def written(self) -> None:
        """Wait, without blocking the event loop, until every byte received is on file
        (OSError if a write failed)."""
        self.flush()
        with _DONE:
            waiter = asyncio.get_running_loop().create_future() if self._writing else None
            self._waiter = waiter
        if waiter is not None:
            await waiter
        self._raise_error()

    def fileno(self) -> int:
        """The temporary file's descriptor (for handing the file to another process)."""
        return self._open_spool().fileno()

    def read(self) -> bytes:
        """The whole file, once every write is done (OSError if one failed)."""
        self.flush()
        with _DONE:
            _DONE.wait_for(lambda: self._writing == 0)
        self._raise_error()
        if self.spool is None:  # nothing was ever written
            return b""
        self.spool.seek(0)
        return self.spool.read()

    def close(self) -> None:
        """Release the temporary file (after the writes already handed over)."""
        if self._closed:
            return
        self._closed = True
        self._pending, self._pending_bytes = [], 0
        _writer().close(self)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _write_now(self, pieces: list[memoryview], offset: int) -> None:
        """Write ``pieces`` at ``offset`` (from any thread: two writes never overlap)."""
        fd = self._open_spool().fileno()
        while pieces:
            written = os.pwritev(fd, pieces, offset)
            if written <= 0:
                raise OSError(errno.EIO, "could not write the upload's temporary file")
            offset += written
            while pieces and written >= len(pieces[0]):
                written -= len(pieces.pop(0))
            if written:
                pieces[0] = pieces[0][written:]

    def _open_spool(self) -> IO[bytes]:
        """The temporary file, created by the first write (usually on the writer thread: on
        the event loop, creating it cost 0.3 ms a file and far more while the disk was busy)."""
        if self.spool is None:
            with _SPOOLING:  # the writer thread and a caller writing directly may race
                if self.spool is None:
                    # Unbuffered: writes go to the descriptor itself (``pwritev``), and
                    # ``read`` reads it back.
                    self.spool = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - closed by owner
        return self.spool


# Guards the creation of temporary files (``ReceivedFile._open_spool``).
_SPOOLING = threading.Lock()

# Notified whenever a write of any file is done (``ReceivedFile.read`` waits on it).
_DONE = threading.Condition()

# A queued job: the file, then the pieces, offset and size to write, or None to close it.
_Job = tuple[ReceivedFile, list[memoryview] | None, int, int]


class _Writer:
    """The thread that writes the received bytes of every upload to their temporary files.

    On the event loop, the kernel's copy into the page cache (and freeing it on close) took
    a fifth of the loop's time under 32 concurrent uploads; here it runs on the other core
    while the loop parses (bench_upload, our server alone: 590 → 617 MB/s, medians of six
    paired runs). Jobs run in order, so a file is closed after its writes. Each write
    carries its offset: when more than ``QUEUE_BYTES`` are waiting, the caller writes its
    own at once, without waiting for the queue, so memory stays bounded however slow the
    disk.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued = 0  # bytes waiting (guarded by _lock)
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="upload-writer", daemon=True).start()

    def write(self, file: ReceivedFile, pieces: list[memoryview], offset: int, size: int) -> None:
        """Write ``pieces`` at ``offset`` of ``file``: queued, or here if too much is queued."""
        with _DONE:
            file._writing += 1
        with self._lock:
            queued = self._queued + size <= QUEUE_BYTES
            if queued:
                self._queued += size
        if queued:
            self._jobs.put((file, pieces, offset, size))
        else:
            self._do(file, pieces, offset)

    def close(self, file: ReceivedFile) -> None:
        """Close ``file`` once its queued writes are done."""
        self._jobs.put((file, None, 0, 0))

    def _run(self) -> None:
        run_as_batch()
        while True:
            file, pieces, offset, size = self._jobs.get()
            if pieces is None:
                if file.spool is not None:
                    with contextlib.suppress(OSError):  # nothing to lose: the file is anonymous
                        file.spool.close()
                continue
            with self._lock:
                self._queued -= size
            self._do(file, pieces, offset)

    def _do(self, file: ReceivedFile, pieces: list[memoryview], offset: int) -> None:
        error: OSError | None = None
        try:
            file._write_now(pieces, offset)
        except OSError as exc:
            error = exc
        except BaseException as exc:  # never leave a reader waiting for a write that died
            error = OSError(errno.EIO, f"could not write the upload's temporary file: {exc!r}")
        with _DONE:
            file._writing -= 1
            if error is not None and file._error is None:
                file._error = error
            _DONE.notify_all()
            waiter = None
            if file._writing == 0:
                waiter, file._waiter = file._waiter, None
        if waiter is not None:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)


def run_as_batch() -> None:
    """Mark the calling thread (and threads it starts) as batch work for Linux's scheduler.

    Such a thread never preempts another when it wakes. The event loop receiving uploads
    keeps a core busy; the writer thread and the upload worker woke hundreds of times a
    second and each time took the core from it, which then waited on the run queue (22 %
    of its time under bench_upload's load, 16 % with this; its share of the CPU is the same).
    Does nothing where the policy does not exist.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, policy, os.sched_param(0))


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # the upload may have been cancelled meanwhile
        waiter.set_result(None)


_WRITER: _Writer | None = None
_WRITER_GUARD = threading.Lock()


def _writer() -> _Writer:
    """This process's writer thread, started on first use (and again in a forked child)."""
    global _WRITER
    with _WRITER_GUARD:
        if _WRITER is None or _WRITER.pid != os.getpid():
            _WRITER = _Writer()
        return _WRITER


@dataclass
class ReceivedForm:
    """Text fields in order, and the non-empty files; use as a context manager."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[ReceivedFile] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        """The first value of a text field."""
        return next((v for k, v in self.fields if k == name), default)

    def getlist(self, name: str) -> list[str]:
        """Every value of a repeated text field."""
        return [v for k, v in self.fields if k == name]

    def items(self) -> Iterator[tuple[str, str]]:
        """All text fields."""
        return iter(self.fields)

    def close(self) -> None:
        """Release every temporary file."""
        for item in self.files:
            item.close()

    def __enter__(self) -> ReceivedForm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def mib(limit: int) -> str:
    """A byte count as MB for people (16 MiB → "16")."""
    return f"{limit / 2**20:.3g}"


def body_cap(max_file_bytes: int, max_files: int) -> int:
    """The largest acceptable body for these caps."""
    return max_files * (max_file_bytes + 4096) + ENVELOPE_BYTES


class _Receiver:
    """Callbacks for python-multipart's parser that enforce the caps as bytes arrive."""

    def __init__(
        self,
        *,
        charset: str,
        max_file_bytes: int,
        max_files: int,
        before_files: Callable[[ReceivedForm], None] | None,
    ) -> None:
        self.form = ReceivedForm()
        self.charset = charset
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.before_files = before_files
        self.checked = before_files is None
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._data = bytearray()
        self._file: ReceivedFile | None = None

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode(self.charset)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")

    def run_check(self) -> None:
        if not self.checked and self.before_files is not None:
            self.checked = True
            self.before_files(self.form)

    def on_part_begin(self) -> None:
        self._headers = {}
        self._data = bytearray()
        self._file = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise IncompleteUpload("The form was sent in a way we cannot read.")
        self._name = self._decode(options[b"name"])
        if b"filename" in options:
            self.run_check()
            content_type = self._decode(self._headers.get(b"content-type", b""))
            self._file = ReceivedFile(
                field_name=self._name,
                filename=self._decode(options[b"filename"])[:255],
                content_type=content_type[:100],
            )
        elif len(self.form.fields) >= MAX_FIELDS:
            raise UploadTooLarge("The form has too many fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        file = self._file
        if file is None:
            if len(self._data) + (end - start) > MAX_FIELD_BYTES:
                raise UploadTooLarge(f"The field {self._name[:40]!r} is too long.")
            self._data += data[start:end]
            return
        if file.size == 0 and end > start:
            # The first byte of a new non-empty file: is there room for it?
            if len(self.form.files) >= self.max_files:
                file.close()
                raise TooManyFiles(
                    f"Please send at most {self.max_files} photos at once.", limit=self.max_files
                )
            self.form.files.append(file)
        file.size += end - start
        if file.size > self.max_file_bytes:
            raise UploadTooLarge(
                f"The file is larger than {mib(self.max_file_bytes)} MB.",
                filename=file.filename,
                limit=self.max_file_bytes,
            )
        if isinstance(data, bytes):  # immutable: kept as a view until written, never copied
            file.write(memoryview(data)[start:end])
        else:
            file.write(memoryview(bytes(data[start:end])))

    def on_part_end(self) -> None:
        if self._file is None:
            self.form.fields.append((self._name, self._decode(bytes(self._data))))
        elif self._file.size == 0:
            self._file.close()  # an empty file input: the browser sends filename="" and nothing
        else:
            self._file.flush()
        self._file = None

    def on_end(self) -> None:
        self.ended = True


async def receive_form(
    headers: Headers,
    stream: AsyncIterator[bytes],
    *,
    max_file_bytes: int,
    max_files: int,
    before_files: Callable[[ReceivedForm], None] | None = None,
) -> ReceivedForm:
    """Parse a multipart body within the caps; the caller owns (and must close) the result."""
    kind, params = parse_options_header(headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedBody("Please send the form as multipart/form-data.")
    declared = headers.get("content-length")
    cap = body_cap(max_file_bytes, max_files)
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise UploadTooLarge(
            f"The upload is larger than {mib(cap)} MB in total.", limit=max_file_bytes
        )
    charset_raw = params.get(b"charset", b"utf-8")
    charset = charset_raw.decode("latin-1") if isinstance(charset_raw, bytes) else charset_raw
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"
    receiver = _Receiver(
        charset=charset,
        max_file_bytes=max_file_bytes,
        max_files=max_files,
        before_files=before_files,
    )
    callbacks = {
        "on_part_begin": receiver.on_part_begin,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
        "on_end": receiver.on_end,
    }
    received = 0
    try:
        parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
        async for chunk in stream:
            received += len(chunk)
            if received > cap:  # no Content-Length (chunked), or one that lied
                raise UploadTooLarge(
                    f"The upload is larger than {mib(cap)} MB in total.", limit=max_file_bytes
                )
            parser.write(chunk)
        parser.finalize()
        if not receiver.ended:
            raise IncompleteUpload(
                "The upload was interrupted before it was complete. Please try again."
            )
        receiver.run_check()
    except FormParserError as exc:
        receiver.form.close()
        raise IncompleteUpload("The form was sent in a way we cannot read.") from exc
    except ClientDisconnect as exc:
        receiver.form.close()
        raise IncompleteUpload("The connection was lost during the upload.") from exc
    except BaseException:
        receiver.form.close()
        raise
    return receiver.form
