"""The streaming multipart reader: it stops reading at every cap and keeps memory flat."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.datastructures import Headers

from aggregator.errors import Forbidden
from aggregator.services import uploads_stream
from aggregator.services.uploads_stream import (
    IncompleteUpload,
    ReceivedForm,
    TooManyFiles,
    UnsupportedBody,
    UploadTooLarge,
    body_cap,
    receive_form,
)

pytestmark = pytest.mark.anyio
BOUNDARY = "----testboundary"
CHUNK = 64 * 1024
MiB = 1024 * 1024


def headers(length: int | None = None) -> Headers:
    raw = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if length is not None:
        raw["content-length"] = str(length)
    return Headers(raw)


def field(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_head(name: str = "photos", filename: str = "a.jpg") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()


END = f"--{BOUNDARY}--\r\n".encode()


class Body:
    """An async byte stream that counts what the reader took from it."""

    def __init__(self, head: bytes, *, filler: int = 0, tail: bytes = b"") -> None:
        self.head, self.filler, self.tail = head, filler, tail
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.head), CHUNK):
            piece = self.head[start : start + CHUNK]
            self.consumed += len(piece)
            yield piece
        left = self.filler
        block = b"\xab" * CHUNK
        while left != 0:
            size = CHUNK if left < 0 else min(CHUNK, left)
            left = -1 if left < 0 else left - size
            self.consumed += size
            yield block[:size]
        if self.tail:
            self.consumed += len(self.tail)
            yield self.tail


async def test_a_complete_form_is_read_in_order() -> None:
    body = (
        field("csrf_token", "t" * 40)
        + field("consent", "projection")
        + field("consent", "web")
        + file_head()
        + b"JPEGDATA"
        + b"\r\n"
        + file_head(filename="")
        + b"\r\n"
        + END
    )
    with await receive_form(headers(), Body(body), max_file_bytes=MiB, max_files=2) as form:
        assert isinstance(form, ReceivedForm)
        assert form.getlist("consent") == ["projection", "web"]
        assert [(f.filename, f.read()) for f in form.files] == [("a.jpg", b"JPEGDATA")]


async def test_reading_stops_at_the_per_file_cap_even_without_content_length() -> None:
    stream = Body(file_head(), filler=-1)  # an endless file, chunked (no Content-Length)
    with pytest.raises(UploadTooLarge) as caught:
        await receive_form(headers(), stream, max_file_bytes=MiB, max_files=1)
    assert caught.value.status_code == 413 and caught.value.filename == "a.jpg"
    assert stream.consumed <= MiB + 2 * CHUNK


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    stream = Body(file_head(), filler=-1)
    with pytest.raises(UploadTooLarge):
        await receive_form(headers(body_cap(MiB, 1) + 1), stream, max_file_bytes=MiB, max_files=1)
    assert stream.consumed == 0


async def test_a_content_length_that_lies_does_not_help() -> None:
    stream = Body(file_head(), filler=-1)
    with pytest.raises(UploadTooLarge):
        await receive_form(headers(1000), stream, max_file_bytes=MiB, max_files=1)
    assert stream.consumed <= MiB + 2 * CHUNK


async def test_the_csrf_check_runs_before_any_photo_is_read() -> None:
    calls: list[str] = []

    def refuse(form: ReceivedForm) -> None:
        calls.append(form.get("csrf_token"))
        raise Forbidden("no", code="csrf")

    stream = Body(field("csrf_token", "wrong") + file_head(), filler=-1)
    with pytest.raises(Forbidden):
        await receive_form(
            headers(), stream, max_file_bytes=16 * MiB, max_files=1, before_files=refuse
        )
    assert calls == ["wrong"]
    assert stream.consumed <= 2 * CHUNK


async def test_the_extra_file_is_refused_on_its_first_byte() -> None:
    head = file_head(filename="1.jpg") + b"x\r\n" + file_head(filename="2.jpg")
    stream = Body(head, filler=-1)
    with pytest.raises(TooManyFiles) as caught:
        await receive_form(headers(), stream, max_file_bytes=16 * MiB, max_files=1)
    assert caught.value.limit == 1
    assert stream.consumed <= 2 * CHUNK


async def test_an_overlong_text_field_is_refused() -> None:
    stream = Body(field("message", "x" * 20_000) + END)
    with pytest.raises(UploadTooLarge):
        await receive_form(headers(), stream, max_file_bytes=MiB, max_files=1)


async def test_a_body_that_ends_early_is_incomplete() -> None:
    with pytest.raises(IncompleteUpload):
        await receive_form(headers(), Body(file_head() + b"abc"), max_file_bytes=MiB, max_files=1)


async def test_only_multipart_is_accepted() -> None:
    with pytest.raises(UnsupportedBody):
        await receive_form(
            Headers({"content-type": "application/x-www-form-urlencoded"}),
            Body(b"a=b"),
            max_file_bytes=MiB,
            max_files=1,
        )


async def test_memory_stays_flat_while_a_large_file_streams_in() -> None:
    size = 8 * MiB
    stream = Body(file_head(), filler=size, tail=b"\r\n" + END)
    tracemalloc.start()
    try:
        with await receive_form(headers(), stream, max_file_bytes=16 * MiB, max_files=1) as form:
            _current, peak = tracemalloc.get_traced_memory()
            assert form.files[0].size == size
    finally:
        tracemalloc.stop()
    # The file went to a temporary file: the heap never held more than a few chunks of it.
    assert peak < 2 * MiB


async def test_a_file_arriving_in_odd_pieces_is_kept_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pieces are written in batches with pwritev, which may write only part of them."""
    real_pwritev = os.pwritev

    def short_pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        return real_pwritev(fd, [memoryview(b"".join(bytes(b) for b in buffers))[:1000]], offset)

    monkeypatch.setattr(os, "pwritev", short_pwritev)
    photo = bytes(range(256)) * 5000  # 1.28 MB, several batches
    body = (
        field("name", "A")
        + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photos"; '
        f'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + photo
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    sizes = [1, 7, 4096, 0, 65536, 3, 200_000]

    async def odd_chunks() -> AsyncIterator[bytes]:
        offset, turn = 0, 0
        while offset < len(body):
            size = sizes[turn % len(sizes)] or 1
            yield body[offset : offset + size]
            offset, turn = offset + size, turn + 1

    with await receive_form(headers(), odd_chunks(), max_file_bytes=2 * MiB, max_files=1) as form:
        assert form.get("name") == "A"
        [received] = form.files
        assert received.size == len(photo)
        assert received.read() == photo


def photo_body(photo: bytes) -> bytes:
    return field("name", "A") + file_head() + photo + b"\r\n" + END


async def test_received_bytes_are_written_by_the_writer_thread_not_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_pwritev, real_temporary_file = os.pwritev, tempfile.TemporaryFile
    writers: list[str] = []
    creators: list[str] = []

    def pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        writers.append(threading.current_thread().name)
        return real_pwritev(fd, buffers, offset)

    def temporary_file(*args: Any, **kwargs: Any) -> Any:
        creators.append(threading.current_thread().name)
        return real_temporary_file(*args, **kwargs)

    monkeypatch.setattr(os, "pwritev", pwritev)
    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    photo = os.urandom(3 * MiB)
    stream = Body(photo_body(photo))
    with await receive_form(headers(), stream, max_file_bytes=4 * MiB, max_files=1) as form:
        [received] = form.files
        assert received.read() == photo
    assert len(writers) >= 3 * MiB // uploads_stream.WRITE_BYTES
    assert set(writers) == {"upload-writer"}
    assert creators == ["upload-writer"]  # the temporary file too, not the event loop
    deadline = time.monotonic() + 10
    while not received.spool.closed and time.monotonic() < deadline:
        time.sleep(0.01)  # the close is queued behind the writes
    assert received.spool.closed


async def test_when_the_writer_falls_behind_the_caller_writes_and_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    real_pwritev = os.pwritev
    direct: list[int] = []

    def pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        if threading.current_thread().name == "upload-writer":
            release.wait(10)  # a disk slower than the network
        else:
            direct.append(sum(len(b) for b in buffers))
        return real_pwritev(fd, buffers, offset)

    monkeypatch.setattr(os, "pwritev", pwritev)
    monkeypatch.setattr(uploads_stream, "QUEUE_BYTES", MiB)
    photo = os.urandom(4 * MiB)
    try:
        with await receive_form(
            headers(), Body(photo_body(photo)), max_file_bytes=8 * MiB, max_files=1
        ) as form:
            # One batch is stuck in the writer and at most QUEUE_BYTES wait behind it (a batch
            # is up to WRITE_BYTES and a chunk); the reading thread wrote the rest itself.
            assert len(photo) - sum(direct) <= MiB + 2 * uploads_stream.WRITE_BYTES
            release.set()
            assert form.files[0].read() == photo
    finally:
        release.set()


async def test_a_failed_write_fails_the_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    def pwritev(fd: int, buffers: list[memoryview], offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", pwritev)
    with pytest.raises(OSError) as caught:  # noqa: PT012 - either step may see it first
        with await receive_form(
            headers(), Body(photo_body(os.urandom(2 * MiB))), max_file_bytes=4 * MiB, max_files=1
        ) as form:
            form.files[0].read()
    assert caught.value.errno == errno.ENOSPC
