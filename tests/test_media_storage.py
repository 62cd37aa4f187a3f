"""LocalStorage: random keys, atomic writes, strict keys (no traversal), sweeping, serving."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aggregator.errors import NotFound
from aggregator.media.storage import (
    KEY_RE,
    LocalStorage,
    Storage,
    media_response,
    sweep_orphans,
)

HOSTILE_KEYS = [
    "../../x.jpg",
    "ab/../../etc/passwd",
    "/etc/passwd",
    "a.php\x00.jpg",
    "x.php.jpg",
    "\u202egpj.exe",
    "CON.jpg",
    "-rf.jpg",
    "a" * 1000,
    "AB/" + "c" * 30 + ".jpg",  # upper case is not ours
    "ab/" + "c" * 30 + ".svg",
    "ab/" + "c" * 30 + ".html",
    "ab/" + "c" * 30 + ".jpg/",
    "ab\\" + "c" * 30 + ".jpg",
    "ab/" + "c" * 30 + ".jpg\n",
    "ab/" + "c" * 29 + ".jpg",
    "",
]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def test_put_returns_random_key_and_round_trips(storage: LocalStorage) -> None:
    assert isinstance(storage, Storage)
    key = storage.put(b"\xff\xd8hello", suffix=".jpg")
    assert KEY_RE.match(key)
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{30}\.jpg", key)
    assert storage.exists(key)
    with storage.open(key) as fh:
        assert fh.read() == b"\xff\xd8hello"
    assert storage.path(key).resolve().is_relative_to(storage.root)
    assert storage.content_type(key) == "image/jpeg"
    other = storage.put(b"\xff\xd8hello", suffix="jpg")
    assert other != key  # never derived from content or a user's name
    assert sorted(storage.iter_keys()) == sorted([key, other])


def test_suffixes_are_an_allowlist(storage: LocalStorage) -> None:
    assert storage.content_type(storage.put(b"x", suffix=".webp")) == "image/webp"
    assert storage.put(b"x", suffix=".JPEG").endswith(".jpg")
    for bad in (".php", ".html", ".svg", "", ".jpg/../x"):
        with pytest.raises(ValueError):
            storage.put(b"x", suffix=bad)


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused_everywhere(storage: LocalStorage, key: str) -> None:
    assert not storage.exists(key)
    for call in (storage.path, storage.open, storage.delete, storage.content_type):
        with pytest.raises(NotFound):
            call(key)
    with pytest.raises(NotFound):
        media_response(storage, key)


def test_delete_is_idempotent(storage: LocalStorage) -> None:
    key = storage.put(b"data", suffix=".jpg")
    storage.delete(key)
    storage.delete(key)
    assert not storage.exists(key)
    with pytest.raises(NotFound):
        storage.open(key)


def test_write_is_atomic_and_leaves_no_temp_on_failure(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.put(b"first", suffix=".jpg")

    def crash(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        storage.put(b"second", suffix=".jpg")
    monkeypatch.undo()
    assert list(storage.iter_temp_files()) == []
    assert len(list(storage.iter_keys())) == 1


def test_write_fsyncs_file_and_directory(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    storage.put(b"data", suffix=".jpg")
    assert len(calls) >= 2  # the file before the rename, the directory after it


def test_concurrent_puts_never_collide(storage: LocalStorage) -> None:
    keys: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(25):
            key = storage.put(f"{n}-{i}".encode(), suffix=".jpg")
            with lock:
                keys.append(key)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 100
    contents = set()
    for key in keys:
        with storage.open(key) as fh:
            contents.add(fh.read())
    assert contents == {f"{n}-{i}".encode() for n in range(4) for i in range(25)}


def test_sweep_removes_only_old_unreferenced_files_and_temp_leftovers(
    storage: LocalStorage,
) -> None:
    kept = storage.put(b"kept", suffix=".jpg")
    orphan = storage.put(b"orphan", suffix=".jpg")
    fresh_orphan = storage.put(b"fresh", suffix=".jpg")
    leftover = storage.path(kept).parent / ".tmp-0123456789abcdef"
    leftover.write_bytes(b"half")
    stranger = storage.root / "README"  # not ours: never touched
    stranger.write_text("hi")
    old = 1_000_000.0
    for path in (storage.path(kept), storage.path(orphan), leftover):
        os.utime(path, (old, old))
    now = old + 49 * 3600
    os.utime(storage.path(fresh_orphan), (now - 60, now - 60))

    removed = sweep_orphans(storage, referenced={kept}, older_than_seconds=48 * 3600, now=now)
    assert orphan in removed and len(removed) == 2
    assert storage.exists(kept) and storage.exists(fresh_orphan)
    assert not storage.exists(orphan) and not leftover.exists()
    assert stranger.exists()
    assert sweep_orphans(storage, referenced={kept}, older_than_seconds=48 * 3600, now=now) == []


def test_empty_root_is_fine(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "missing")
    assert list(storage.iter_keys()) == []
    assert sweep_orphans(storage, referenced=set(), older_than_seconds=0) == []


def test_media_response_headers(storage: LocalStorage) -> None:
    import anyio

    key = storage.put(b"\xff\xd8\xff fake jpeg", suffix=".jpg")

    async def fetch() -> httpx.Response:
        async def media(request: Request) -> Response:
            try:
                return media_response(storage, request.path_params["key"])
            except NotFound:
                return PlainTextResponse("not found", status_code=404)

        app = Starlette(routes=[Route("/media/{key:path}", media)])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ok = await client.get(f"/media/{key}")
            assert (await client.get("/media/../../etc/passwd")).status_code == 404
            storage.delete(key)
            assert (await client.get(f"/media/{key}")).status_code == 404
            return ok

    response = anyio.run(fetch)
    assert response.status_code == 200
    assert response.content == b"\xff\xd8\xff fake jpeg"
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "public, max-age=300"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("inline;") and disposition.isascii()


def test_media_response_private_cache(storage: LocalStorage) -> None:
    key = storage.put(b"x", suffix=".webp")
    response = media_response(storage, key, cache_control="private, no-store")
    assert response.headers["cache-control"] == "private, no-store"
    assert response.media_type == "image/webp"
