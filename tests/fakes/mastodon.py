"""A fake Mastodon instance speaking the REST API as the real one does (reference/sources.md §1).

``GET /api/v1/timelines/tag/:tag`` (any[]/all[]/none[], only_media, local/remote, max_id/
since_id/min_id, limit ≤ 40, newest first, ids compared by length then text), the ``Link``
header that keeps only local/limit/only_media (so any[] is lost), ``X-RateLimit-*`` with an
ISO reset on every answer and a 429 *without* Retry-After, 401 when hashtag feeds need a login,
``200 []`` when they are disabled or the tag is unknown (or the documented 404), and
``GET /api/v1/statuses/:id`` (404 ``Record not found`` once deleted). Media files are served
from ``/system/...``. Statuses are built from the recorded payloads in ``tests/data``.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

DATA = Path(__file__).resolve().parent.parent / "data"
PERMITTED_LINK_PARAMS = ("local", "limit", "only_media")  # mastodon PERMITTED_PARAMS


def load(name: str) -> Any:
    """A recorded payload from ``tests/data``."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _norm(tag: str) -> str:
    return unicodedata.normalize("NFKC", tag).casefold()


def _key(status_id: str) -> tuple[int, str]:
    return (len(status_id), status_id)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "t", "on")


@dataclass
class FakeMastodon:
    """State of one fake instance; ``app`` is its ASGI application."""

    host: str = "mastodon.test"
    base_url: str = "http://mastodon.test"  # set to the served URL for links and media URLs
    next_id: int = 117_020_600_000_000_000
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    media: dict[str, bytes] = field(default_factory=dict)
    # "public", "authenticated" (401 without a token) or "disabled" (200 []), as in 4.5+.
    hashtag_feed_access: str = "public"
    tokens: set[str] = field(default_factory=set)
    unknown_tag_status: int = 200  # the controller answers 200 []; the docs say 404
    rate_limit: int = 300
    remaining: int = 300
    reset_at: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    )
    # Requests seen: (path, query items, headers) for assertions.
    requests: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = field(default_factory=list)

    # ----- building statuses -------------------------------------------------------------
    def new_id(self) -> str:
        """The next status id (strictly increasing, like a snowflake)."""
        self.next_id += 1
        return str(self.next_id)

    def add_status(
        self,
        *,
        tags: list[str],
        images: list[tuple[str | None, str | None]] | None = None,
        media_types: list[str] | None = None,
        text: str = "We remember",
        sensitive: bool = False,
        spoiler_text: str = "",
        visibility: str = "public",
        uri: str | None = None,
        url: str | None = "auto",
        account: dict[str, Any] | None = None,
        status_id: str | None = None,
        local: bool = True,
    ) -> dict[str, Any]:
        """Add a status shaped like the recorded two-image status; return it."""
        status: dict[str, Any] = copy.deepcopy(load("mastodon_status_with_two_images.json"))
        template = status["media_attachments"][0]
        sid = status_id or self.new_id()
        base = self.base_url
        acct = account or {
            **status["account"],
            "acct": "mastodonpy_test",
            "url": f"{base}/@mastodonpy_test",
        }
        attachments = []
        images = (
            [(f"{base}/system/media/{sid}-{i}.jpg", f"alt {i}") for i in range(1)]
            if images is None
            else images
        )
        types = media_types or ["image"] * len(images)
        for i, ((media_url, alt), kind) in enumerate(zip(images, types, strict=True)):
            attachment = copy.deepcopy(template)
            attachment.update(id=f"{sid}{i}", type=kind, url=media_url, description=alt)
            attachment["preview_url"] = media_url
            attachments.append(attachment)
        tag_html = " ".join(
            f'<a href="{base}/tags/{t}" class="mention hashtag" rel="tag">#<span>{t}</span></a>'
            for t in tags
        )
        status.update(
            id=sid,
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            sensitive=sensitive,
            spoiler_text=spoiler_text,
            visibility=visibility,
            uri=uri or f"{base}/users/{acct['username']}/statuses/{sid}",
            url=f"{base}/@{acct['username']}/{sid}" if url == "auto" else url,
            content=f"<p>{text} {tag_html}</p>",
            account=acct,
            media_attachments=attachments,
            tags=[{"name": t, "url": f"{base}/tags/{t.lower()}"} for t in tags],
            reblog=None,
        )
        status["_local"] = local
        self.statuses[sid] = status
        return status

    def add_raw(self, status: dict[str, Any], *, local: bool = True) -> dict[str, Any]:
        """Add a recorded status as-is (its id is kept)."""
        status = copy.deepcopy(status)
        status["_local"] = local
        self.statuses[str(status["id"])] = status
        return status

    # ----- HTTP ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        reset = self.reset_at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": reset,
            "Cache-Control": "private, no-store",
            "Vary": "Authorization, Origin",
            "X-Content-Type-Options": "nosniff",
        }

    def _json(self, body: Any, status: int = 200, extra: dict[str, str] | None = None) -> Response:
        headers = {**self._headers(), **(extra or {})}
        return JSONResponse(
            body, status_code=status, headers=headers, media_type="application/json; charset=utf-8"
        )

    def _throttle(self, request: Request) -> Response | None:
        self.requests.append(
            (request.url.path, list(request.query_params.multi_items()), dict(request.headers))
        )
        if self.remaining <= 0:
            # rack-attack's throttled response: same headers, Remaining 0, no Retry-After.
            return self._json({"error": "Too many requests"}, 429)
        self.remaining -= 1
        return None

    def _authorized(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    @staticmethod
    def _public(status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if not k.startswith("_")}

    async def tag_timeline(self, request: Request) -> Response:
        """``GET /api/v1/timelines/tag/:hashtag``."""
        if (throttled := self._throttle(request)) is not None:
            return throttled
        if request.headers.get("authorization") and not self._authorized(request):
            return self._json({"error": "The access token is invalid"}, 401)
        if self.hashtag_feed_access == "authenticated" and not self._authorized(request):
            return self._json({"error": "The access token is invalid"}, 401)
        if self.hashtag_feed_access == "disabled":
            return self._json([])
        q = request.query_params
        tag = _norm(request.path_params["tag"])
        known = {_norm(t["name"]) for s in self.statuses.values() for t in s["tags"]}
        if tag not in known:
            if self.unknown_tag_status == 404:
                return self._json({"error": "Record not found"}, 404)
            return self._json([])
        # The path tag plus any[]; at most 4 tags are applied in total.
        any_tags = ([tag] + [_norm(t) for t in q.getlist("any[]")])[:4]
        all_tags = [_norm(t) for t in q.getlist("all[]")]
        none_tags = [_norm(t) for t in q.getlist("none[]")]
        try:
            limit = max(1, min(40, int(q.get("limit", "20"))))
        except ValueError:
            limit = 20
        found = []
        for status in self.statuses.values():
            names = {_norm(t["name"]) for t in status["tags"]}
            if status["id"] in self.deleted or status["visibility"] != "public":
                continue
            if status.get("reblog") is not None or not names.intersection(any_tags):
                continue
            if not set(all_tags) <= names or names.intersection(none_tags):
                continue
            if _truthy(q.get("only_media")) and not status["media_attachments"]:
                continue
            if _truthy(q.get("local")) and not status["_local"]:
                continue
            if _truthy(q.get("remote")) and status["_local"]:
                continue
            found.append(status)
        found.sort(key=lambda s: _key(s["id"]), reverse=True)
        if q.get("max_id"):
            found = [s for s in found if _key(s["id"]) < _key(q["max_id"])]
        if q.get("since_id"):
            found = [s for s in found if _key(s["id"]) > _key(q["since_id"])]
        if q.get("min_id"):
            # The page immediately after min_id: the oldest newer ones, still newest first.
            newer = [s for s in found if _key(s["id"]) > _key(q["min_id"])]
            page = list(reversed(list(reversed(newer))[:limit]))
        else:
            page = found[:limit]
        extra = {}
        if page:
            kept = [(k, v) for k, v in q.multi_items() if k in PERMITTED_LINK_PARAMS]
            path = f"{self.base_url}{quote(request.url.path)}"
            nxt = urlencode([*kept, ("max_id", page[-1]["id"])])
            prev = urlencode([*kept, ("min_id", page[0]["id"])])
            extra["Link"] = f'<{path}?{nxt}>; rel="next", <{path}?{prev}>; rel="prev"'
        return self._json([self._public(s) for s in page], extra=extra)

    async def status(self, request: Request) -> Response:
        """``GET /api/v1/statuses/:id``."""
        if (throttled := self._throttle(request)) is not None:
            return throttled
        sid = request.path_params["id"]
        status = self.statuses.get(sid)
        if (
            status is None
            or sid in self.deleted
            or status["visibility"] not in ("public", "unlisted")
        ):
            return self._json({"error": "Record not found"}, 404)
        return self._json(self._public(status))

    async def media_file(self, request: Request) -> Response:
        """A media file under ``/system/``."""
        data = self.media.get(request.path_params["path"])
        if data is None:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        return Response(data, media_type="image/jpeg")

    async def not_found(self, request: Request) -> Response:
        """Unknown API paths: Mastodon answers JSON 404."""
        return self._json({"error": "Not found"}, 404)

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/api/v1/timelines/tag/{tag}", self.tag_timeline),
                Route("/api/v1/statuses/{id}", self.status),
                Route("/system/{path:path}", self.media_file),
                Route("/api/{rest:path}", self.not_found),
            ]
        )


def answering_app(status: int, body: Any) -> Starlette:
    """A server whose tag timeline always answers ``status`` with JSON ``body`` and no headers.

    E.g. ``422 {"error": "This method requires an authenticated user"}`` (servers before
    mastodon#26237) or a bare ``429`` without any rate-limit header.
    """

    async def answer(request: Request) -> Response:
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/api/v1/timelines/tag/{tag}", answer)])


def html_site_app() -> Starlette:
    """Not Mastodon at all: every path is an HTML 404 page (a mistyped instance URL)."""

    async def page(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>Not found</title>", status_code=404)

    return Starlette(routes=[Route("/{rest:path}", page)])
