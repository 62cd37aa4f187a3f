"""A fake Bluesky PDS/AppView speaking XRPC as the real one does (reference/sources.md §2).

Covers ``com.atproto.server.createSession`` / ``refreshSession``, ``app.bsky.feed.searchPosts``
(tag AND filter, ``sort=latest`` on sortAt, ``since``/``until``, opaque offset cursor) and
``app.bsky.feed.getPosts``. Errors are XRPC JSON ``{"error", "message"}`` with the PDS's
statuses; every answer carries ``RateLimit-*`` headers and 429s add ``Retry-After``. Post views
are built from the recorded AppView payload in ``tests/data``.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

DATA = Path(__file__).resolve().parent.parent / "data"
_TAG = re.compile(r"(?<![\w#])#(\w+)")


def recorded_post_view() -> dict[str, Any]:
    """The real postView with an ``images#view`` embed (``reply.root`` of the fixture)."""
    data = json.loads((DATA / "bluesky_feedViewPost_reply_root_with_image.json").read_text())
    return dict(data["reply"]["root"])


def tag_facets(text: str) -> list[dict[str, Any]]:
    """Facets a real client would attach: UTF-8 byte offsets, slice includes '#'."""
    facets = []
    for match in _TAG.finditer(text):
        start = len(text[: match.start()].encode("utf-8"))
        end = start + len(match.group(0).encode("utf-8"))
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": end},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": match.group(1)}],
            }
        )
    return facets


def iso(dt: datetime) -> str:
    """Bluesky's datetime form."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    if len(value) == 10:
        value += "T00:00:00Z"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class FakeBluesky:
    """State of the fake service; ``app`` is the ASGI application."""

    handle: str = "organiser.bsky.social"
    password: str = "abcd-efgh-ijkl-mnop"
    did: str = "did:plc:organiser000000000000000"
    require_auth: bool = True
    # Mimics public.api.bsky.app for logged-out search: 403 with an HTML/text body.
    forbid_search: bool = False
    limit: int = 3000
    remaining: int = 3000
    login_budget: int = 30
    # After this many requests, answer 429 as an edge proxy does: HTML, no headers.
    edge_429_after: int | None = None
    # The search cursor stops working this deep ("may not allow scrolling through the set").
    max_depth: int | None = None
    posts: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    logins: int = 0
    refreshes: int = 0
    access: set[str] = field(default_factory=set)
    refresh: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/xrpc/{nsid}", self._xrpc, methods=["GET", "POST"])])

    # -- building data ------------------------------------------------------------------------

    def add_post(
        self,
        rkey: str,
        text: str,
        *,
        indexed_at: datetime,
        created_at: datetime | None = None,
        images: int = 1,
        embed: str = "images",
        alt: str = "A person holding a sign",
        extra_tags: list[str] | None = None,
        handle: str = "participant.bsky.social",
        author_labels: list[str] | None = None,
        labels: list[str] | None = None,
        self_labels: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a post view shaped like the recorded one; ``embed`` picks the view type."""
        post = copy.deepcopy(recorded_post_view())
        did = f"did:plc:{handle.split('.')[0][:20]:0<24}"
        uri = f"at://{did}/app.bsky.feed.post/{rkey}"
        author = post["author"]
        author.update(handle=handle, did=did, displayName=handle.split(".")[0].title())
        author["labels"] = [_label(did, v) for v in author_labels or []]
        record = post["record"]
        record.update(text=text, createdAt=iso(created_at or indexed_at), facets=tag_facets(text))
        if extra_tags:
            record["tags"] = extra_tags
        if self_labels:
            record["labels"] = {
                "$type": "com.atproto.label.defs#selfLabels",
                "values": [{"val": v} for v in self_labels],
            }
        views = []
        template = post["embed"]["images"][0]
        for n in range(images):
            cid = f"bafkrei{rkey}{n:03d}".lower()
            view = copy.deepcopy(template)
            view["thumb"] = f"https://cdn.bsky.app/img/feed_thumbnail/plain/{did}/{cid}@jpeg"
            view["fullsize"] = f"https://cdn.bsky.app/img/feed_fullsize/plain/{did}/{cid}@jpeg"
            view["alt"] = alt if n == 0 else ""
            views.append(view)
        post["embed"] = _embed(embed, views)
        if post["embed"] is None:
            del post["embed"]
            record.pop("embed", None)
        post.update(uri=uri, indexedAt=iso(indexed_at))
        post["labels"] = [_label(did, v) for v in labels or []]
        post.pop("$type", None)
        self.posts.append(post)
        return post

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 400 ExpiredToken."""
        self.expired |= self.access

    # -- the ASGI side ------------------------------------------------------------------------

    def _headers(self, status: int = 200) -> dict[str, str]:
        reset = int(time.time()) + 300
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.limit};w=300",
        }
        if status == 429:
            headers["Retry-After"] = "300"
        return headers

    def _error(self, status: int, error: str, message: str) -> Response:
        return JSONResponse(
            {"error": error, "message": message}, status_code=status, headers=self._headers(status)
        )

    async def _xrpc(self, request: Request) -> Response:
        nsid = request.path_params["nsid"]
        params: dict[str, Any] = {k: request.query_params.getlist(k) for k in request.query_params}
        self.calls.append((nsid, params))
        if self.edge_429_after is not None and len(self.calls) > self.edge_429_after:
            return PlainTextResponse("<html><body>429 Too Many Requests</body></html>", 429)
        if self.remaining <= 0:
            return self._error(429, "RateLimitExceeded", "Rate Limit Exceeded")
        self.remaining -= 1
        handler = {
            "com.atproto.server.createSession": ("POST", self._create_session),
            "com.atproto.server.refreshSession": ("POST", self._refresh_session),
            "app.bsky.feed.searchPosts": ("GET", self._search),
            "app.bsky.feed.getPosts": ("GET", self._get_posts),
        }.get(nsid)
        if handler is None:
            return self._error(501, "MethodNotImplemented", "Method Not Implemented")
        if request.method != handler[0]:
            return self._error(400, "InvalidRequest", f"Incorrect HTTP method ({request.method})")
        return await handler[1](request, params)

    def _bearer(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def _issue(self) -> dict[str, Any]:
        access, refresh = (
            f"eyJ.access.{secrets.token_hex(8)}",
            f"eyJ.refresh.{secrets.token_hex(8)}",
        )
        self.access.add(access)
        self.refresh.add(refresh)
        return {
            "did": self.did,
            "handle": self.handle,
            "email": "organiser@example.org",
            "accessJwt": access,
            "refreshJwt": refresh,
            "active": True,
        }

    async def _create_session(self, request: Request, params: dict[str, Any]) -> Response:
        self.logins += 1
        if self.logins > self.login_budget:
            response = self._error(429, "RateLimitExceeded", "Rate Limit Exceeded")
            response.headers.update({"RateLimit-Limit": "30", "RateLimit-Policy": "30;w=300"})
            response.headers["RateLimit-Remaining"] = "0"
            return response
        body = await request.json()
        ident = str(body.get("identifier", "")).lstrip("@")
        if ident not in (self.handle, self.did) or body.get("password") != self.password:
            return self._error(401, "AuthenticationRequired", "Invalid identifier or password")
        return JSONResponse(self._issue(), headers=self._headers())

    async def _refresh_session(self, request: Request, params: dict[str, Any]) -> Response:
        token = self._bearer(request)
        if token not in self.refresh:
            return self._error(400, "ExpiredToken", "Token has expired")
        self.refresh.discard(token)
        self.refreshes += 1
        return JSONResponse(self._issue(), headers=self._headers())

    def _auth_error(self, request: Request) -> Response | None:
        token = self._bearer(request)
        if token is None:
            if not self.require_auth:
                return None
            return self._error(401, "AuthenticationRequired", "Authentication Required")
        if token in self.expired:
            return self._error(400, "ExpiredToken", "Token has expired")
        if token not in self.access:
            return self._error(401, "InvalidToken", "Token could not be verified")
        return None

    async def _search(self, request: Request, params: dict[str, Any]) -> Response:
        if self.forbid_search:
            return PlainTextResponse("Request forbidden by administrative rules.", 403)
        if (denied := self._auth_error(request)) is not None:
            return denied
        if not params.get("q"):
            return self._error(400, "InvalidRequest", 'Error: Params must have the property "q"')
        limit = int((params.get("limit") or ["25"])[0])
        if not 1 <= limit <= 100:
            return self._error(400, "InvalidRequest", "Error: limit must be between 1 and 100")
        if any(len(t) > 64 for t in params.get("tag", [])):
            return self._error(400, "InvalidRequest", "Error: tag must not be longer than 64")
        wanted = {t.casefold() for t in params.get("tag", [])}
        since = _parse(params["since"][0]) if params.get("since") else None
        until = _parse(params["until"][0]) if params.get("until") else None
        hits = []
        for post in self.posts:
            when = _sort_at(post)
            if post["uri"] in self.deleted or not wanted <= _post_tags(post):
                continue
            if (since and when < since) or (until and when >= until):
                continue
            hits.append((when, post))
        hits.sort(key=lambda h: h[0], reverse=True)
        offset = int((params.get("cursor") or ["0"])[0])
        if self.max_depth is not None and offset >= self.max_depth:
            return self._error(400, "InvalidRequest", "Error: cursor is past the search window")
        page = [p for _, p in hits[offset : offset + limit]]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(hits)}
        if offset + limit < len(hits):
            body["cursor"] = str(offset + limit)
        return JSONResponse(body, headers=self._headers())

    async def _get_posts(self, request: Request, params: dict[str, Any]) -> Response:
        uris = params.get("uris", [])
        if len(uris) > 25:
            return self._error(400, "InvalidRequest", "Error: uris must not have more than 25")
        by_uri = {p["uri"]: p for p in self.posts if p["uri"] not in self.deleted}
        found = [by_uri[u] for u in uris if u in by_uri]
        return JSONResponse({"posts": found}, headers=self._headers())


def _label(src: str, val: str) -> dict[str, Any]:
    return {"src": src, "uri": src, "val": val, "cts": "2025-01-01T00:00:00.000Z"}


def _embed(kind: str, views: list[dict[str, Any]]) -> dict[str, Any] | None:
    images = {"$type": "app.bsky.embed.images#view", "images": views}
    if kind == "images":
        return images
    if kind == "gallery":
        # The 2026 gallery view names the small image ``thumbnail``, not ``thumb``.
        items = [
            {
                "$type": "app.bsky.embed.gallery#viewImage",
                "thumbnail": v["thumb"],
                "fullsize": v["fullsize"],
                "alt": v["alt"],
                "aspectRatio": v["aspectRatio"],
            }
            for v in views
        ]
        return {"$type": "app.bsky.embed.gallery#view", "items": items}
    if kind == "recordWithMedia":
        quoted = {"$type": "app.bsky.embed.record#viewNotFound", "uri": "at://x/y/z"}
        return {
            "$type": "app.bsky.embed.recordWithMedia#view",
            "record": {"record": quoted},
            "media": images,
        }
    if kind == "video":
        return {
            "$type": "app.bsky.embed.video#view",
            "cid": "bafkreivideo",
            "playlist": "https://video.bsky.app/watch/x/playlist.m3u8",
            "thumbnail": views[0]["thumb"] if views else "",
            "aspectRatio": {"width": 852, "height": 480},
        }
    return None


def _sort_at(post: dict[str, Any]) -> datetime:
    indexed = _parse(post["indexedAt"])
    created = _parse(post["record"]["createdAt"])
    return min(indexed, created)


def _post_tags(post: dict[str, Any]) -> set[str]:
    record = post["record"]
    tags = {
        f["tag"].casefold()
        for facet in record.get("facets", [])
        for f in facet["features"]
        if f["$type"] == "app.bsky.richtext.facet#tag"
    }
    return tags | {t.casefold() for t in record.get("tags", [])}
