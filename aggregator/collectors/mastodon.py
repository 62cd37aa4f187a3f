"""Mastodon hashtag timelines: photos from ``GET /api/v1/timelines/tag/:tag`` (sources.md §1)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from aggregator.collectors.base import CollectedItem, CollectedMedia, CollectResult, SourceSpec
from aggregator.collectors.http import request_json, retry_after_seconds
from aggregator.errors import CollectorError, SourceConfigError

PAGE_LIMIT = 40  # the API maximum
# How far a new source reaches back: 25 pages of 40. Requests with max_id count against the
# stricter 300-per-15-minutes limit, so the backfill is bounded.
BACKFILL_PAGES = 25
MAX_TAGS = 4  # Mastodon applies at most 4 tags (the path tag plus any[]) and ignores the rest
# A 429 carries no Retry-After; the unauthenticated window is 5 minutes.
DEFAULT_RATE_LIMIT_WAIT = 300.0
# Stop paging early while a few requests remain, so other jobs on this IP are not starved.
LOW_REMAINING = 3
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".heif", ".avif")
_LOCAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def normalize_tag(name: str) -> str:
    """Compare hashtags the way Mastodon does: NFKC (width), case-folded, without '#'."""
    return unicodedata.normalize("NFKC", name).strip().lstrip("#＃").casefold()


def _id_key(status_id: str) -> tuple[int, str]:
    # Ids are opaque strings; numeric snowflakes of different lengths sort by length first.
    return (len(status_id), status_id)


def _settings(source: SourceSpec) -> tuple[str, str, tuple[str, ...], dict[str, str]]:
    config = source.config
    raw_url = str(config.get("url") or "").strip().rstrip("/")
    if raw_url and "://" not in raw_url:
        raw_url = "https://" + raw_url
    try:
        url = httpx.URL(raw_url)
    except (httpx.InvalidURL, ValueError):
        raise SourceConfigError("the Mastodon instance URL is not valid") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise SourceConfigError("the Mastodon instance URL must be an http(s) URL")
    configured = config.get("hashtags") or ()
    if isinstance(configured, str):
        configured = configured.replace(",", " ").split()
    tags = tuple(
        dict.fromkeys(
            t for t in (normalize_tag(str(x)) for x in source.hashtags or configured) if t
        )
    )
    if not tags:
        raise SourceConfigError("a Mastodon source needs at least one hashtag")
    if len(tags) > MAX_TAGS:
        raise SourceConfigError(f"Mastodon applies at most {MAX_TAGS} hashtags per source")
    headers = {}
    token = str(config.get("token") or "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return raw_url, url.host, tags, headers


def _fail(response: httpx.Response, body: Any, *, token: bool, what: str) -> CollectorError:
    status = response.status_code
    error = body.get("error") if isinstance(body, dict) else None
    if status == 401:
        hint = "the access token was rejected" if token else "the instance requires a login token"
        return SourceConfigError(f"{what}: {hint} (HTTP 401)")
    if status in (403, 422) and error:
        return SourceConfigError(f"{what}: the instance refused access: {error}")
    if status == 404:
        return SourceConfigError(f"{what}: no Mastodon API at this URL (HTTP 404)")
    if status == 410:
        return SourceConfigError(f"{what}: the instance says this is gone (HTTP 410)")
    if status == 429:
        wait = retry_after_seconds(response) or DEFAULT_RATE_LIMIT_WAIT
        return CollectorError(f"{what}: rate limited (HTTP 429)", retry_after=wait)
    return CollectorError(f"{what}: HTTP {status}", retry_after=retry_after_seconds(response))


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
        return value
    return None


def _media(attachment: Any) -> CollectedMedia | None:
    if not isinstance(attachment, dict):
        return None
    kind = attachment.get("type")
    if kind == "image":
        # ``url`` is null while processing; remote statuses may also only have ``remote_url``.
        url = _http_url(attachment.get("url")) or _http_url(attachment.get("remote_url"))
    elif kind == "unknown":
        # Remote media the instance failed to cache: only ``remote_url`` is left. Take it when
        # it names an image file; the pipeline sniffs the bytes anyway.
        url = _http_url(attachment.get("remote_url"))
        if url is None or not url.split("?", 1)[0].lower().endswith(_IMAGE_SUFFIXES):
            return None
    else:  # video, gifv (an mp4), audio
        return None
    if url is None:
        return None
    description = attachment.get("description")
    alt = description.strip() if isinstance(description, str) and description.strip() else None
    media_id = attachment.get("id")
    return CollectedMedia(url=url, alt_text=alt, external_id=str(media_id) if media_id else None)


def parse_status(
    raw: Any, *, host: str, wanted: frozenset[str] = frozenset()
) -> CollectedItem | None:
    """A collected item for one Status, or None (not public, no image, no wanted tag)."""
    if not isinstance(raw, dict):
        return None
    status = raw.get("reblog") if isinstance(raw.get("reblog"), dict) else raw
    assert isinstance(status, dict)
    uri = status.get("uri")
    if not isinstance(uri, str) or not uri or status.get("visibility", "public") != "public":
        return None
    tags = tuple(
        dict.fromkeys(
            normalize_tag(t["name"])
            for t in status.get("tags") or ()
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        )
    )
    if wanted and not wanted.intersection(tags):
        return None
    media = tuple(m for m in map(_media, status.get("media_attachments") or ()) if m)
    if not media:
        return None
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    assert isinstance(account, dict)
    acct = str(account.get("acct") or account.get("username") or "")
    handle = None
    if acct:
        handle = "@" + (acct if "@" in acct else f"{acct}@{host}")
    spoiler = status.get("spoiler_text")
    return CollectedItem(
        external_id=uri,
        # ``url`` is nullable (some remote software); the ActivityPub id is usually a link too.
        url=_http_url(status.get("url")) or _http_url(uri),
        author_name=str(account.get("display_name") or account.get("username") or acct),
        author_handle=handle,
        author_url=_http_url(account.get("url")),
        text=str(status.get("content") or ""),
        text_is_html=True,
        language=status.get("language") if isinstance(status.get("language"), str) else None,
        created_at=_parse_time(status.get("created_at")),
        hashtags=tags,
        media=media,
        sensitive=bool(status.get("sensitive")) or bool(spoiler),
        content_warning=spoiler.strip() if isinstance(spoiler, str) and spoiler.strip() else None,
        remote_id=str(status["id"]) if status.get("id") else None,
    )


class MastodonCollector:
    """Walks a hashtag timeline forward with ``min_id`` (after reaching back once with
    ``max_id``); images only, de-duplicated on ``uri``."""

    kind: ClassVar[str] = "mastodon"

    async def collect(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        cursor: Mapping[str, Any] | None,
    ) -> CollectResult:
        """Return the next page: newer than ``cursor["min_id"]``, or while a new source is
        still reaching back (``cursor["max_id"]``), the page older than that.

        The first run takes the newest page and, when it is full, starts a backfill of up to
        ``BACKFILL_PAGES`` older pages: a source added after a campaign began still collects
        what was posted before. The forward position (``min_id``) is fixed by the first page,
        so nothing posted during the backfill is skipped.
        """
        base, host, tags, headers = _settings(source)
        state = dict(cursor or {})
        min_id = str(state.get("min_id") or "")
        older_than = str(state.get("max_id") or "")
        # The Link header drops any[] (mastodon#37236), so every page URL is built here.
        params: list[tuple[str, str]] = [("only_media", "true"), ("limit", str(PAGE_LIMIT))]
        params += [("any[]", tag) for tag in tags[1:]]
        if older_than:
            params.append(("max_id", older_than))
        elif min_id:
            params.append(("min_id", min_id))
        url = f"{base}/api/v1/timelines/tag/{quote(tags[0], safe='')}"
        response, body = await request_json(http, "GET", url, params=params, headers=headers)
        what = f"Mastodon #{tags[0]}"
        if response.status_code == 404 and isinstance(body, dict) and body.get("error"):
            # Documented answer for an unknown hashtag (current servers send 200 []).
            return CollectResult(items=[], cursor=None)
        if response.status_code != 200:
            raise _fail(response, body, token="Authorization" in headers, what=what)
        if not isinstance(body, list):
            raise CollectorError(f"{what}: the answer is not a list of statuses")
        ids = sorted(
            (str(s["id"]) for s in body if isinstance(s, dict) and s.get("id")), key=_id_key
        )
        wanted = frozenset(tags)
        items = [item for s in body if (item := parse_status(s, host=host, wanted=wanted))]
        items.sort(key=lambda i: _id_key(i.remote_id or ""))
        remaining = response.headers.get("x-ratelimit-remaining", "").strip()
        low = remaining.isdigit() and int(remaining) < LOW_REMAINING
        full = len(body) >= PAGE_LIMIT
        if older_than or not min_id:  # a backfill page, or the first page of a new source
            pages_left = int(state.get("backfill_left", BACKFILL_PAGES)) - 1
            forward = min_id or (ids[-1] if ids else "")
            next_cursor: dict[str, Any] | None = {"min_id": forward} if forward else None
            if next_cursor is not None and full and ids and pages_left > 0:
                next_cursor |= {"max_id": ids[0], "backfill_left": pages_left}
            backfilling = next_cursor is not None and "max_id" in next_cursor
            # After the last older page, one forward request collects what came meanwhile.
            more = (backfilling or bool(older_than)) and not low
        else:
            next_cursor = {"min_id": ids[-1]} if ids else None
            more = full and not low
        return CollectResult(
            items=items,
            cursor=next_cursor,
            more=more,
            retry_after=retry_after_seconds(response) if low else None,
        )

    async def missing(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        external_ids: Sequence[tuple[str, str]],
    ) -> set[str]:
        """Which ``(external_id, status id or URL)`` pairs are gone upstream (404 on the status).

        Pairs whose status id cannot be derived are not reported. Rate limits and server errors
        raise ``CollectorError`` rather than guess.
        """
        base, host, _tags, headers = _settings(source)
        gone: set[str] = set()
        for external_id, ref in external_ids:
            status_id = _local_id(ref, host)
            if status_id is None:
                continue
            url = f"{base}/api/v1/statuses/{quote(status_id, safe='')}"
            response, body = await request_json(http, "GET", url, headers=headers)
            if response.status_code == 200:
                continue
            # Only a JSON "Record not found" counts: an HTML 404 means a wrong base URL, and
            # withdrawing approved photos on that basis would be a serious mistake.
            if response.status_code in (404, 410) and isinstance(body, dict):
                gone.add(external_id)
                continue
            raise _fail(response, body, token="Authorization" in headers, what="Mastodon status")
        return gone


def _local_id(ref: str, host: str) -> str | None:
    """The instance-local status id from an id or a local status URL (``/@user/<id>``)."""
    if _LOCAL_ID.match(ref):
        return ref
    try:
        url = httpx.URL(ref)
    except (httpx.InvalidURL, ValueError):
        return None
    last = url.path.rstrip("/").rsplit("/", 1)[-1]
    if url.host == host and _LOCAL_ID.match(last) and url.path.startswith("/@"):
        return last
    return None
