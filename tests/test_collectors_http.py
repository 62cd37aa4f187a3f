"""Shared collector HTTP helpers: capped JSON reads, redaction, rate-limit parsing."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from aggregator.collectors.http import (
    API_MAX_BYTES,
    BodyTooLarge,
    api_limits,
    get_json,
    make_api_client,
    redact_text,
    redact_url,
    request_bytes,
    request_json,
    retry_after_seconds,
)
from aggregator.errors import CollectorError
from tests.fakes.feeds import media_host_app
from tests.fakes.server import serve_app

NOW = datetime(2026, 8, 1, 13, 55, tzinfo=UTC).timestamp()


def _api() -> Starlette:
    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True, "echo": dict(request.query_params)})

    async def gz(request: Request) -> Response:
        body = gzip.compress(json.dumps({"zipped": True}).encode())
        return Response(body, media_type="application/json", headers={"Content-Encoding": "gzip"})

    async def big(request: Request) -> Response:
        return JSONResponse({"pad": "x" * (API_MAX_BYTES + 10)})

    async def html_error(request: Request) -> Response:
        return HTMLResponse("<h1>Bad gateway</h1>", status_code=502)

    async def html_ok(request: Request) -> Response:
        return HTMLResponse("<h1>hello</h1>")

    async def deep(request: Request) -> Response:
        return Response(b"[" * 100_000 + b"]" * 100_000, media_type="application/json")

    async def empty(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/ok", ok),
            Route("/gz", gz),
            Route("/big", big),
            Route("/html-error", html_error),
            Route("/html-ok", html_ok),
            Route("/deep", deep),
            Route("/empty", empty),
        ]
    )


@pytest.fixture
def client() -> Iterator[httpx.AsyncClient]:
    """An API client over the ASGI transport (no sockets)."""
    yield make_api_client(transport=httpx.ASGITransport(app=_api()), base_url="http://api.test")


@pytest.mark.anyio
async def test_request_json_parses_and_leaves_a_readable_response(
    client: httpx.AsyncClient,
) -> None:
    async with client:
        response, data = await request_json(client, "GET", "http://api.test/ok", params={"a": "1"})
    assert data == {"ok": True, "echo": {"a": "1"}}
    assert response.status_code == 200 and response.json() == data
    async with make_api_client(transport=httpx.ASGITransport(app=_api())) as again:
        _, same = await get_json(again, "http://api.test/ok", params={"a": "1"})
    assert same == data


@pytest.mark.anyio
async def test_gzip_body_is_decoded(client: httpx.AsyncClient) -> None:
    async with client:
        _, data = await request_json(client, "GET", "http://api.test/gz")
    assert data == {"zipped": True}


@pytest.mark.anyio
async def test_body_over_one_mebibyte_is_refused(client: httpx.AsyncClient) -> None:
    async with client:
        with pytest.raises(BodyTooLarge):
            await request_json(client, "GET", "http://api.test/big")


@pytest.mark.anyio
async def test_non_json_bodies(client: httpx.AsyncClient) -> None:
    async with client:
        response, data = await request_json(client, "GET", "http://api.test/html-error")
        assert response.status_code == 502 and data is None
        with pytest.raises(CollectorError, match="not valid JSON"):
            await request_json(client, "GET", "http://api.test/html-ok")
        with pytest.raises(CollectorError, match="not valid JSON"):
            await request_json(client, "GET", "http://api.test/deep")
        response, data = await request_json(client, "GET", "http://api.test/empty")
        assert response.status_code == 204 and data is None


@pytest.mark.anyio
async def test_network_errors_never_show_tokens_or_queries() -> None:
    with serve_app(_api()) as base:
        pass  # nothing listens on this port any more
    url = f"{base}/bot123456:AAHsecretTOKEN/getUpdates?offset=5&token=QUERYSECRET"
    async with make_api_client() as client:
        with pytest.raises(CollectorError) as caught:
            await request_json(client, "GET", url)
    text = f"{caught.value} {caught.value.message} {caught.value.args!r}"
    assert "AAHsecretTOKEN" not in text and "QUERYSECRET" not in text
    assert "/bot<redacted>/getUpdates" in text


@pytest.mark.anyio
async def test_total_deadline_applies_to_slow_bodies() -> None:
    with serve_app(media_host_app(bomb_size=1 << 20)) as base:
        async with make_api_client() as client:
            with pytest.raises(CollectorError, match="within 0.5 s"):
                await request_bytes(client, "GET", f"{base}/slow.jpg", deadline=0.5)


def test_redaction() -> None:
    url = "https://api.telegram.org/bot123:ABC-def/getFile?file_id=x#frag"
    assert redact_url(url) == "https://api.telegram.org/bot<redacted>/getFile"
    assert redact_url("https://user:pw@example.org:8443/a?b=c") == "https://example.org:8443/a"
    text = "failed GET https://user:pw@host.example/bot99:XYZ/sendMessage?chat_id=1 (x)"
    assert redact_text(text) == "failed GET https://host.example/bot<redacted>/sendMessage (x)"
    assert redact_url("http://[::1") == "<invalid url>"


def test_api_limits() -> None:
    limits = api_limits()
    assert limits["max_redirects"] == 3 and limits["trust_env"] is False
    timeout = limits["timeout"]
    assert (timeout.connect, timeout.read) == (5.0, 10.0)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "120"}, 120.0),
        (503, {"Retry-After": "Sat, 01 Aug 2026 13:56:40 GMT"}, 100.0),
        # Mastodon: ISO 8601 reset, no Retry-After on 429
        (
            429,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-08-01T14:00:00.070144Z"},
            300.07,
        ),
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-08-01T14:00:00Z"}, 300.0),
        (200, {"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "2026-08-01T14:00:00Z"}, None),
        (429, {"X-RateLimit-Reset": "2026-08-01T14:00:00Z"}, 300.0),
        # Bluesky / X: epoch seconds
        (429, {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 42)}, 42.0),
        # IETF draft: delta seconds
        (200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "30"}, 30.0),
        # A reset in the past means "now", never negative
        (429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2020-01-01T00:00:00Z"}, 0.0),
        (429, {"Retry-After": "soon"}, None),
        (429, {}, None),
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "garbage"}, None),
    ],
)
def test_retry_after_seconds(status: int, headers: dict[str, str], expected: float | None) -> None:
    result = retry_after_seconds(httpx.Response(status, headers=headers), now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=0.01)
