"""HTTP helpers shared by every collector: limits, capped JSON/bytes reads, rate-limit parsing.

The numbers come from DESIGN.md "Numbers" (after Mastodon's ``Request``): connect 5 s, read
10 s, a 30 s total deadline per request, at most 3 redirects and API bodies of at most 1 MiB.
Error messages never contain query strings or tokens (Telegram puts its token in the path).
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import math
import re
import time
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anyio
import httpx

from aggregator.errors import CollectorError

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
WRITE_TIMEOUT = 10.0
POOL_TIMEOUT = 5.0
TOTAL_TIMEOUT = 30.0
MAX_REDIRECTS = 3
API_MAX_BYTES = 1_048_576
MEDIA_MAX_BYTES = 16 * 1_048_576
USER_AGENT = "WeRemember-aggregator/0.1 (+remembrance photo wall)"
# Only encodings we can decode ourselves with a bounded output buffer (see ``read_capped``).
ACCEPT_ENCODING = "gzip, deflate"

_BOT_TOKEN = re.compile(r"/bot[^/?#\s]+", re.IGNORECASE)
_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]*)[?#][^\s\"'<>]*", re.IGNORECASE)
_USERINFO = re.compile(r"(https?://)[^/@\s]+@", re.IGNORECASE)


def api_timeout() -> httpx.Timeout:
    """Per-operation timeouts for collector HTTP (the total deadline is applied separately)."""
    return httpx.Timeout(
        connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=WRITE_TIMEOUT, pool=POOL_TIMEOUT
    )


def api_limits() -> dict[str, Any]:
    """Keyword arguments for an ``httpx.AsyncClient`` used for (trusted) API base URLs."""
    return {
        "timeout": api_timeout(),
        "follow_redirects": True,
        "max_redirects": MAX_REDIRECTS,
        "headers": {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        # Proxy variables from the environment must not silently reroute collector traffic.
        "trust_env": False,
    }


def make_api_client(**overrides: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with the collector limits; ``overrides`` win (e.g. transport)."""
    return httpx.AsyncClient(**{**api_limits(), **overrides})


def redact_text(text: str) -> str:
    """Remove query strings, fragments, user-info and ``/bot<token>`` segments from URLs in text."""
    text = _USERINFO.sub(r"\1", text)
    text = _URL_QUERY.sub(r"\1", text)
    return _BOT_TOKEN.sub("/bot<redacted>", text)


def redact_url(url: str | httpx.URL) -> str:
    """``url`` without query, fragment, user-info or bot token: safe for logs and errors."""
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return _BOT_TOKEN.sub("/bot<redacted>", f"{parsed.scheme}://{parsed.host}{port}{parsed.path}")


class BodyTooLarge(CollectorError):
    """A remote body exceeded its byte cap (declared or while streaming)."""

    code = "body_too_large"


def _decoder(encoding: str) -> zlib._Decompress | None:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        # wbits 47 accepts zlib or gzip headers; raw deflate is handled on first failure.
        return zlib.decompressobj(zlib.MAX_WBITS | 32)
    raise CollectorError(f"unsupported Content-Encoding {encoding!r}")


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read a streamed response body, decoding gzip/deflate ourselves, stopping at ``max_bytes``.

    Decoded bytes are counted with a bounded decompressor so a gzip bomb never expands past the
    cap in memory (httpx's own decoder inflates a whole network chunk at once).
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the {max_bytes}-byte limit")
    decoder = _decoder(response.headers.get("content-encoding", ""))
    out = bytearray()
    raw_deflate_tried = False

    def feed(data: bytes) -> None:
        nonlocal decoder, raw_deflate_tried
        if decoder is None:
            out.extend(data)
        else:
            while data:
                try:
                    piece = decoder.decompress(data, max_bytes - len(out) + 1)
                except zlib.error as exc:
                    if not raw_deflate_tried and not out:
                        raw_deflate_tried = True
                        decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                        continue
                    raise CollectorError("corrupt compressed body") from exc
                out.extend(piece)
                data = decoder.unconsumed_tail
                if len(out) > max_bytes:
                    break
        if len(out) > max_bytes:
            raise BodyTooLarge(f"body exceeds the {max_bytes}-byte limit")

    async for chunk in response.aiter_raw():
        feed(chunk)
    return bytes(out)


def _rebuilt(response: httpx.Response, body: bytes) -> httpx.Response:
    # A readable copy, so callers may use .text/.json(); the encoding headers no longer apply.
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        history=response.history,
        extensions=response.extensions,
    )


async def request_bytes(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: Any = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = API_MAX_BYTES,
    deadline: float = TOTAL_TIMEOUT,
) -> tuple[httpx.Response, bytes]:
    """Send a request and read the body under ``max_bytes`` and a total ``deadline``.

    Any status is returned (callers decide what 404 or 429 mean). Network failures, timeouts and
    oversized bodies raise ``CollectorError`` with a redacted message.
    """
    send_headers = {"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
    shown = redact_url(url)
    try:
        with anyio.fail_after(deadline):
            request = http.build_request(
                method, url, params=params, json=json, headers=send_headers
            )
            response = await http.send(request, stream=True)
            try:
                body = await read_capped(response, max_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        raise CollectorError(
            f"{method} {shown}: no complete answer within {deadline:g} s"
        ) from None
    except httpx.TimeoutException as exc:
        raise CollectorError(f"{method} {shown}: timed out ({type(exc).__name__})") from None
    except httpx.InvalidURL:
        raise CollectorError(f"{method} {shown}: invalid URL or redirect target") from None
    except httpx.HTTPError as exc:
        detail = redact_text(str(exc)) or type(exc).__name__
        raise CollectorError(f"{method} {shown}: {detail}") from None
    except CollectorError as exc:
        exc.message = f"{method} {shown}: {exc.message}"
        exc.args = (exc.message,)
        raise
    return _rebuilt(response, body), body


async def request_json(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: Any = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = API_MAX_BYTES,
) -> tuple[httpx.Response, Any]:
    """Send a request and parse a JSON body of at most ``max_bytes``.

    Returns ``(response, parsed)`` for any status. A 2xx body that is not JSON raises
    ``CollectorError``; a non-2xx body that is not JSON (an HTML error page) gives ``None``.
    An empty body gives ``None``.
    """
    send_headers = {"Accept": "application/json", **(headers or {})}
    response, body = await request_bytes(
        http, method, url, params=params, json=json, headers=send_headers, max_bytes=max_bytes
    )
    if not body.strip():
        return response, None
    try:
        return response, jsonlib.loads(body)
    except (ValueError, RecursionError):
        if response.is_success:
            raise CollectorError(
                f"{method} {redact_url(url)}: answer is not valid JSON "
                f"(HTTP {response.status_code})"
            ) from None
        return response, None


def _parse_reset(value: str, now: float) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        # Large numbers are epoch seconds (Bluesky, X); small ones are deltas (IETF draft).
        return number - now if number > 1_000_000_000 else number
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _parse_http_date(value, now)
    if when.tzinfo is None:
        return None
    return when.timestamp() - now


def _parse_http_date(value: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now


def retry_after_seconds(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the remote asks us to wait, or None.

    Reads ``Retry-After`` (seconds or HTTP date), then ``X-RateLimit-Reset`` / ``RateLimit-Reset``
    (ISO 8601 as Mastodon sends, epoch seconds or delta seconds) when the matching
    ``*-Remaining`` is 0 or the status is 429. Never negative.
    """
    now = time.time() if now is None else now
    headers = response.headers
    retry_after = headers.get("retry-after")
    if retry_after:
        text = retry_after.strip()
        seconds = float(text) if text.isdigit() else _parse_http_date(text, now)
        if seconds is not None:
            return max(0.0, seconds)
    for prefix in ("x-ratelimit-", "ratelimit-"):
        remaining = headers.get(prefix + "remaining", "").strip()
        reset = headers.get(prefix + "reset")
        if reset is None:
            continue
        if remaining == "0" or response.status_code == 429:
            seconds = _parse_reset(reset, now)
            if seconds is not None:
                return max(0.0, seconds)
    return None


async def get_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    params: Any = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = API_MAX_BYTES,
) -> tuple[httpx.Response, Any]:
    """``request_json`` for a GET."""
    return await request_json(http, "GET", url, params=params, headers=headers, max_bytes=max_bytes)
