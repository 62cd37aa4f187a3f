"""Bluesky collector: ``app.bsky.feed.searchPosts`` by hashtag through an app-password session.

Search pages run newest first, so each run walks pages down from the top until it meets posts
older than the last run's watermark (less an overlap for late indexing). The cursor keeps, per
hashtag, that watermark and an unfinished walk (the search cursor to resume from), plus the
URIs already returned near the watermark and the login session, so a restart neither logs in
again nor returns anything twice (reference/sources.md §2).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from aggregator.collectors.base import CollectedItem, CollectResult, SourceSpec
from aggregator.collectors.bluesky_parse import (
    format_datetime,
    item_from_post,
    parse_datetime,
    sort_at,
)
from aggregator.collectors.http import request_json, retry_after_seconds
from aggregator.errors import CollectorError, SourceConfigError

__all__ = ["BadRequest", "BlueskyCollector"]

logger = logging.getLogger(__name__)

DEFAULT_SERVICE = "https://bsky.social"
DEFAULT_PUBLIC = "https://public.api.bsky.app"
PAGE_LIMIT = 100
MAX_PAGES = 10
GET_POSTS_BATCH = 25
DEFAULT_OVERLAP = 600.0
MAX_SEEN = 2000
# createSession allows 30 logins per 5 minutes and 300 a day per account: after a refused
# password, wait this long before trying the same password again.
LOGIN_FAILURE_PAUSE = 900.0
SEARCH = "app.bsky.feed.searchPosts"
REAUTH = frozenset({"ExpiredToken", "InvalidToken"})


@dataclass
class _Run:
    """Per-call state: where to send requests and the session in use."""

    service: str
    identifier: str | None
    password: str | None
    session: dict[str, str] | None
    key: tuple[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.service, (self.identifier or "").lower())


class BadRequest(SourceConfigError):
    """XRPC 400 BadQueryString/InvalidRequest: the query (a hashtag, a cursor) was refused."""


def _config(source: SourceSpec) -> tuple[str, str | None, str | None]:
    cfg = source.config
    service = str(cfg.get("url") or DEFAULT_SERVICE).rstrip("/")
    handle = cfg.get("handle") or None
    password = cfg.get("app_password") or None
    if bool(handle) != bool(password):
        raise SourceConfigError("Bluesky source needs both a handle and an app password")
    return service, handle and str(handle).lstrip("@"), password and str(password)


def _number(source: SourceSpec, key: str, default: float) -> float:
    try:
        return float(source.config.get(key, default))
    except (TypeError, ValueError):
        raise SourceConfigError(f"Bluesky source setting {key!r} must be a number") from None


def _tags(source: SourceSpec) -> list[str]:
    tags = list(source.hashtags) or [str(t) for t in source.config.get("hashtags") or ()]
    tags = [t.strip().lstrip("#").lower() for t in tags if t and t.strip().lstrip("#")]
    if not tags:
        raise SourceConfigError("Bluesky source has no hashtag to search for")
    return list(dict.fromkeys(tags))


def _xrpc_error(response: httpx.Response, data: Any, nsid: str) -> CollectorError:
    body = data if isinstance(data, dict) else {}
    error = str(body.get("error") or "")
    said = str(body.get("message") or error or f"HTTP {response.status_code}")[:300]
    status = response.status_code
    if status == 429:
        return CollectorError(
            f"Bluesky rate limit on {nsid}: {said}",
            retry_after=retry_after_seconds(response) or 60.0,
        )
    if status == 401 or error in ("AuthenticationRequired", "AuthFactorTokenRequired"):
        return SourceConfigError(
            f"Bluesky refused the login for {nsid} ({said}); check the handle and app password"
        )
    if status == 403:
        # Logged-out search has answered 403 (an HTML page) since 2025 (atproto#3423).
        return SourceConfigError(
            f"Bluesky refused {nsid} (403 {said}); search needs a handle and an app password, "
            "with the account's PDS (https://bsky.social) as the service URL"
        )
    if status == 400 and error in ("BadQueryString", "InvalidRequest"):
        return BadRequest(f"Bluesky {nsid} refused the query: {error}: {said}")
    if error in ("AccountTakedown", "AccountDeactivated", "MethodNotImplemented"):
        return SourceConfigError(f"Bluesky {nsid} failed: {error}: {said}")
    return CollectorError(
        f"Bluesky {nsid} failed (HTTP {status} {error}): {said}",
        retry_after=retry_after_seconds(response),
    )


class BlueskyCollector:
    """Collects image posts carrying the source's hashtags from Bluesky search."""

    kind: ClassVar[str] = "bluesky"

    def __init__(self) -> None:
        # Sessions survive a failed run here even though its cursor (with the session) is lost.
        self._sessions: dict[tuple[str, str], dict[str, str]] = {}
        self._refused: dict[tuple[str, str, str], tuple[float, str]] = {}

    async def collect(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        cursor: Mapping[str, Any] | None,
    ) -> CollectResult:
        """Walk search results per hashtag down to the saved watermark; return new image posts."""
        service, handle, password = _config(source)
        tags = _tags(source)
        state: dict[str, Any] = copy.deepcopy(dict(cursor or {}))
        run = _Run(service, handle, password, None)
        run.session = self._sessions.get(run.key) or _matching(state.get("session"), run)
        if run.session:
            self._sessions[run.key] = run.session
        overlap = timedelta(seconds=_number(source, "overlap_seconds", DEFAULT_OVERLAP))
        max_pages = max(1, int(_number(source, "max_pages", MAX_PAGES)))
        initial = parse_datetime(source.config.get("since"))
        per_tag: dict[str, Any] = state.setdefault("tags", {})
        seen: dict[str, str] = state.setdefault("seen", {})
        items: list[CollectedItem] = []
        emitted: set[str] = set()
        pages, visited = 0, 0
        retry_after: float | None = None
        halted = False
        for tag in tags:
            st = per_tag.setdefault(tag, {})
            if pages >= max_pages or halted:
                break
            visited += 1
            while pages < max_pages:
                since = parse_datetime(st.get("since")) or initial
                floor = since - overlap if since else None
                params = _search_params(tag, st, floor)
                try:
                    response, data = await self._get(http, run, SEARCH, params)
                except BadRequest as exc:
                    if "cursor" not in params:
                        raise
                    # The search cursor "may not allow scrolling through the entire result
                    # set": treat a refused one as the end of the walk rather than a broken
                    # source (posts deeper than the search allows are out of reach anyway).
                    logger.warning("Bluesky search cursor refused for #%s: %s", tag, exc.message)
                    _absorb(st, {}, since=since, floor=floor, seen=seen, emitted=emitted)
                    break
                except CollectorError as exc:
                    if pages == 0 or isinstance(exc, SourceConfigError):
                        raise
                    # Keep what earlier pages produced: the cursor still matches them exactly.
                    retry_after, halted = exc.retry_after, True
                    break
                pages += 1
                items += _absorb(st, data, since=since, floor=floor, seen=seen, emitted=emitted)
                wait = retry_after_seconds(response)
                if wait:
                    # RateLimit-Remaining reached 0: stop here and let the scheduler wait.
                    retry_after, halted = wait, True
                if halted or "walk" not in st:
                    break
        _prune(seen, per_tag, overlap)
        if run.session:
            state["session"] = run.session
        else:
            state.pop("session", None)
        unfinished = visited < len(tags) or any("walk" in per_tag[t] for t in tags)
        return CollectResult(
            items=items,
            cursor=state,
            more=unfinished and not halted,
            retry_after=retry_after,
        )

    async def missing(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        external_ids: Sequence[tuple[str, str]],
    ) -> set[str]:
        """The at:// URIs among ``(external_id, remote_id)`` pairs that ``getPosts`` no longer
        returns (deleted); the same interface as the Mastodon collector's."""
        base = str(source.config.get("public_url") or DEFAULT_PUBLIC).rstrip("/")
        uris = [u for u in dict.fromkeys(e for e, _ in external_ids) if u.startswith("at://")]
        run = _Run(base, None, None, None)
        gone: set[str] = set()
        for start in range(0, len(uris), GET_POSTS_BATCH):
            batch = uris[start : start + GET_POSTS_BATCH]
            _, data = await self._get(http, run, "app.bsky.feed.getPosts", {"uris": batch})
            found = {p.get("uri") for p in data.get("posts") or () if isinstance(p, dict)}
            gone.update(u for u in batch if u not in found)
        return gone

    async def _get(
        self, http: httpx.AsyncClient, run: _Run, nsid: str, params: Mapping[str, Any]
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """GET an XRPC query, refreshing or renewing the session once when it has expired."""
        if run.identifier and run.session is None:
            await self._login(http, run)
        renewed = False
        while True:
            headers = {}
            if run.session:
                headers["Authorization"] = f"Bearer {run.session['accessJwt']}"
            url = f"{run.service}/xrpc/{nsid}"
            response, data = await request_json(http, "GET", url, params=params, headers=headers)
            if response.status_code == 200 and isinstance(data, dict):
                return response, data
            error = data.get("error") if isinstance(data, dict) else None
            stale = error in REAUTH or (response.status_code == 401 and run.session is not None)
            if not (stale and run.identifier and not renewed):
                raise _xrpc_error(response, data, nsid)
            renewed = True
            if not await self._refresh(http, run):
                await self._login(http, run)

    async def _refresh(self, http: httpx.AsyncClient, run: _Run) -> bool:
        """Trade the refresh token for a new session; False when it is no longer accepted."""
        if not run.session or not run.session.get("refreshJwt"):
            return False
        url = f"{run.service}/xrpc/com.atproto.server.refreshSession"
        headers = {"Authorization": f"Bearer {run.session['refreshJwt']}"}
        response, data = await request_json(http, "POST", url, headers=headers)
        if response.status_code == 200 and isinstance(data, dict):
            self._store(run, data)
            return True
        error = data.get("error") if isinstance(data, dict) else None
        if error in REAUTH or response.status_code in (400, 401):
            return False
        raise _xrpc_error(response, data, "com.atproto.server.refreshSession")

    async def _login(self, http: httpx.AsyncClient, run: _Run) -> None:
        """createSession with the app password, at most once per refused password per pause."""
        assert run.identifier and run.password  # _config guarantees both or neither
        digest = hashlib.sha256(run.password.encode()).hexdigest()
        refusal_key = (*run.key, digest)
        refused = self._refused.get(refusal_key)
        if refused and time.monotonic() - refused[0] < LOGIN_FAILURE_PAUSE:
            raise SourceConfigError(refused[1])
        url = f"{run.service}/xrpc/com.atproto.server.createSession"
        body = {"identifier": run.identifier, "password": run.password}
        response, data = await request_json(http, "POST", url, json=body)
        if response.status_code == 200 and isinstance(data, dict) and data.get("accessJwt"):
            self._refused.pop(refusal_key, None)
            self._store(run, data)
            return
        exc = _xrpc_error(response, data, "com.atproto.server.createSession")
        if isinstance(exc, SourceConfigError):
            self._refused[refusal_key] = (time.monotonic(), exc.message)
        raise exc

    def _store(self, run: _Run, data: Mapping[str, Any]) -> None:
        run.session = {
            "service": run.service,
            "identifier": run.identifier or "",
            "did": str(data.get("did") or ""),
            "handle": str(data.get("handle") or ""),
            "accessJwt": str(data.get("accessJwt") or ""),
            "refreshJwt": str(data.get("refreshJwt") or ""),
        }
        self._sessions[run.key] = run.session


def _search_params(tag: str, st: Mapping[str, Any], floor: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = {"q": f"#{tag}", "tag": [tag], "sort": "latest", "limit": PAGE_LIMIT}
    if floor:
        # Also lets the server stop early; ``since`` is inclusive and applies to sortAt.
        params["since"] = format_datetime(floor)
    walk = st.get("walk")
    if isinstance(walk, dict) and walk.get("cursor"):
        params["cursor"] = walk["cursor"]
    return params


def _absorb(
    st: dict[str, Any],
    data: Mapping[str, Any],
    *,
    since: datetime | None,
    floor: datetime | None,
    seen: dict[str, str],
    emitted: set[str],
) -> list[CollectedItem]:
    """Take one search page into the tag state ``st``; return the items new to us."""
    walk = st.get("walk") if isinstance(st.get("walk"), dict) else None
    newest = parse_datetime(walk.get("newest")) if walk else None
    posts = [p for p in data.get("posts") or () if isinstance(p, dict)]
    items: list[CollectedItem] = []
    below_floor = False
    oldest: datetime | None = None
    for post in posts:
        uri, when = post.get("uri"), sort_at(post)
        if not isinstance(uri, str) or when is None:
            continue
        newest = max(newest, when) if newest else when
        if floor and when < floor:
            # Older than anything a previous run could have missed: the walk is over.
            below_floor = True
            continue
        oldest = min(oldest, when) if oldest else when
        if uri in seen or uri in emitted:
            continue
        seen[uri] = format_datetime(when)
        emitted.add(uri)
        item = item_from_post(post)
        if item is not None:
            items.append(item)
    next_page = data.get("cursor")
    if posts and isinstance(next_page, str) and next_page and not below_floor:
        st["walk"] = {
            "cursor": next_page,
            "newest": format_datetime(newest) if newest else None,
            # The page's bottom: its posts stay in ``seen`` because the offset-like search
            # cursor shifts when new posts arrive, and the next page then repeats them.
            "low": format_datetime(oldest) if oldest else None,
        }
    else:
        st.pop("walk", None)
        top = max((d for d in (since, newest) if d), default=None)
        st["since"] = format_datetime(top) if top else None
    return items


def _matching(saved: Any, run: _Run) -> dict[str, str] | None:
    # A session saved for another service or account (the admin edited the source) is dropped.
    if not isinstance(saved, dict) or not run.identifier:
        return None
    same = saved.get("service") == run.service and saved.get("identifier") == run.identifier
    return {str(k): str(v) for k, v in saved.items()} if same and saved.get("accessJwt") else None


def _prune(seen: dict[str, str], per_tag: Mapping[str, Any], overlap: timedelta) -> None:
    """Forget returned URIs that no later page can show again (below every tag's floor)."""
    marks: list[datetime] = []
    for st in per_tag.values():
        since = parse_datetime(st.get("since"))
        floor = since - overlap if since else None
        walk = st.get("walk") if isinstance(st.get("walk"), dict) else None
        if walk is not None:
            low = parse_datetime(walk.get("low")) or floor
            floor = min(d for d in (floor, low) if d) if floor or low else None
        if floor:
            marks.append(floor)
    if marks:
        keep_from = min(marks)
        for uri in [u for u, t in seen.items() if (parse_datetime(t) or keep_from) < keep_from]:
            del seen[uri]
    if len(seen) > MAX_SEEN:
        for uri in sorted(seen, key=lambda u: seen[u])[: len(seen) - MAX_SEEN]:
            del seen[uri]
