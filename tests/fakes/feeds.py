"""Fake feed hosts (Mastodon tag RSS, Flickr public feeds, WordPress tag feeds) and a media host.

``FakeFeeds`` serves registered bodies with a strong ``ETag`` and ``Last-Modified`` and answers
conditional GETs with ``304``, like nginx/Rails/WordPress do. Flickr's ``photos_public.gne``
picks rss2/atom/json by ``format`` and wraps JSON as JSONP unless ``nojsoncallback=1``.
``media_host_app`` serves images and every hostile behaviour the safe fetcher must survive.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

DATA = Path(__file__).resolve().parent.parent / "data"
RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"


def data_file(name: str) -> bytes:
    """A recorded feed from ``tests/data``."""
    return (DATA / name).read_bytes()


@dataclass
class Feed:
    """One served document."""

    body: bytes
    content_type: str = RSS
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False
    conditional: bool = True  # send ETag/Last-Modified and honour If-None-Match/-Modified-Since


@dataclass
class FakeFeeds:
    """Feeds by path; ``requests`` records (path, query, headers) of every request."""

    feeds: dict[str, Feed] = field(default_factory=dict)
    last_modified: datetime = field(default_factory=lambda: datetime(2026, 1, 27, 8, 0, tzinfo=UTC))
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def add(self, path: str, body: bytes, content_type: str = RSS, **options: object) -> Feed:
        """Serve ``body`` at ``path``."""
        feed = Feed(body, content_type, **options)  # type: ignore[arg-type]
        self.feeds[path] = feed
        return feed

    async def serve(self, request: Request) -> Response:
        """Any registered path; Flickr's endpoint chooses by ``format``."""
        self.requests.append((request.url.path, request.url.query, dict(request.headers)))
        path = request.url.path
        if path == "/services/feeds/photos_public.gne":
            return self._flickr(request)
        feed = self.feeds.get(path)
        if feed is None:
            return HTMLResponse("<!doctype html><h1>Page not found</h1>", status_code=404)
        return self._send(request, feed)

    def _flickr(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "rss2")
        if fmt == "json":
            body = data_file("flickr_feed_photos_public_json.json")
            if request.query_params.get("nojsoncallback") != "1":
                body = b"jsonFlickrFeed(" + body + b")"
            return self._send(request, Feed(body, "application/javascript; charset=utf-8"))
        if fmt == "atom":
            return self._send(request, Feed(data_file("flickr_tagged_atom_enclosure.xml"), ATOM))
        return self._send(request, Feed(data_file("flickr_user_uploads_rss2_mediarss.xml"), RSS))

    def _send(self, request: Request, feed: Feed) -> Response:
        headers = dict(feed.headers)
        if feed.status == 200 and feed.conditional:
            etag = '"' + hashlib.sha256(feed.body).hexdigest()[:16] + '"'
            headers["ETag"] = etag
            headers["Last-Modified"] = format_datetime(self.last_modified, usegmt=True)
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers=headers)
            since = request.headers.get("if-modified-since")
            if since and "if-none-match" not in request.headers:
                try:
                    if parsedate_to_datetime(since) >= self.last_modified:
                        return Response(status_code=304, headers=headers)
                except (TypeError, ValueError):
                    pass
        body = feed.body
        if feed.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return Response(
            body, status_code=feed.status, headers=headers, media_type=feed.content_type
        )

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(routes=[Route("/{rest:path}", self.serve)])


# A tiny valid JPEG-like payload; the fetcher never decodes, only the media pipeline does.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x00" * 200 + b"\xff\xd9"


def _gzip_bomb(decoded_size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = b"\x00" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(decoded_size // len(chunk))]
    return b"".join(parts) + compressor.flush()


def media_host_app(*, bomb_size: int = 64 << 20) -> Starlette:
    """A remote web server: images, redirects, bombs, endless and slow bodies."""
    bomb = _gzip_bomb(bomb_size)

    async def image(request: Request) -> Response:
        return Response(JPEG, media_type="image/jpeg")

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def chain(request: Request) -> Response:
        # /chain/n answers after exactly n redirects.
        n = int(request.path_params["n"])
        if n <= 0:
            return Response(JPEG, media_type="image/jpeg")
        return RedirectResponse(f"/chain/{n - 1}", status_code=301)

    async def loop(request: Request) -> Response:
        return RedirectResponse("/loop", status_code=302)

    async def gzip_bomb(request: Request) -> Response:
        return Response(bomb, media_type="image/jpeg", headers={"Content-Encoding": "gzip"})

    async def gzipped(request: Request) -> Response:
        return Response(
            gzip.compress(JPEG), media_type="image/jpeg", headers={"Content-Encoding": "gzip"}
        )

    async def endless(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            while True:
                yield b"\x00" * 65536
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type="image/jpeg")

    async def huge_declared(request: Request) -> Response:
        # Claims a gigabyte; the client must refuse from the header alone.
        return Response(b"", media_type="image/jpeg", headers={"Content-Length": "1000000000"})

    async def slow(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(200):
                yield b"\x00"
                await asyncio.sleep(0.2)

        return StreamingResponse(body(), media_type="image/jpeg")

    async def stall(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"\xff"
            await asyncio.sleep(30)

        return StreamingResponse(body(), media_type="image/jpeg")

    async def echo_host(request: Request) -> Response:
        return Response(request.headers.get("host", "").encode(), media_type="text/plain")

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        headers = {"Retry-After": "7"} if code in (429, 503) else {}
        return HTMLResponse("<h1>error</h1>", status_code=code, headers=headers)

    return Starlette(
        routes=[
            Route("/image.jpg", image),
            Route("/redirect", redirect),
            Route("/chain/{n}", chain),
            Route("/loop", loop),
            Route("/bomb.jpg", gzip_bomb),
            Route("/gzipped.jpg", gzipped),
            Route("/endless.jpg", endless),
            Route("/huge.jpg", huge_declared),
            Route("/slow.jpg", slow),
            Route("/stall.jpg", stall),
            Route("/status/{code}", status),
            Route("/echo-host", echo_host),
        ]
    )
