"""The display pages of a share link: ``/show/{token}`` and what it loads.

The token opens only these routes (the page, its feed, its event stream, its images, its QR
code and logo, and the screen heartbeat); an unknown, revoked or expired token is a 404 on
every one of them. Responses carry ``no-referrer``, ``noindex`` and ``no-store`` so the token
does not leak through logs, search engines or shared caches (security.md S1).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aggregator.deps import SessionDep, request_session
from aggregator.errors import NotFound
from aggregator.i18n import direction, translations
from aggregator.media.storage import media_response
from aggregator.models import Campaign
from aggregator.services.slideshows import slide_key
from aggregator.services.slideshows_control import record_heartbeat
from aggregator.services.slideshows_document import qr_svg, upload_url
from aggregator.services.slideshows_feed import FeedCache, LiveFeed, display_language
from aggregator.services.slideshows_settings import effective_settings
from aggregator.web.csrf import check_csrf
from aggregator.web.templating import render

router = APIRouter()

PRIVATE_HEADERS: Final = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}
# Seconds between the stream's checks, between pings, and before it ends (the page reconnects).
STREAM_CHECK: Final = 2.0
STREAM_PING: Final = 15.0
STREAM_LIFETIME: Final = 300.0
IMAGE_CACHE: Final = "private, max-age=86400"  # a screen that goes offline keeps its images


def feed_cache(request: Request) -> FeedCache:
    """The app's feed cache, created on first use (no import-time state)."""
    cache: FeedCache | None = getattr(request.app.state, "slideshow_feed_cache", None)
    if cache is None:
        cache = FeedCache()
        request.app.state.slideshow_feed_cache = cache
    return cache


def _live(request: Request, session: Session, token: str) -> LiveFeed:
    settings = request.app.state.settings
    return feed_cache(request).live(
        session=session,
        token=token,
        lang=request.state.lang,
        enabled=tuple(settings.languages),
        public_base_url=settings.public_base_url,
    )


@router.get("/show/{token}", name="show", include_in_schema=False)
def show_page(token: str, request: Request, session: SessionDep) -> Response:
    """The full-screen display of a share link: the slideshow, or the wall (issue 8) for
    links made with the wall layout; both read the same feed."""
    live = _live(request, session, token)
    settings = effective_settings(live.event)
    enabled = tuple(request.app.state.settings.languages)
    lang = display_language(live.event, request.state.lang, enabled)
    base = f"/show/{token}"
    template = "slideshow/wall.html" if live.link.layout == "wall" else "slideshow/live.html"
    return render(
        request,
        template,
        {
            "lang": lang,
            "dir": direction(lang),
            "i18n": translations(lang),
            "event": live.event,
            "theme": settings["theme"],
            "transition": settings["transition"],
            "mode": "live",
            "asset_base": "/static",
            "urls": {
                "feed": f"{base}/feed.json",
                "events": f"{base}/events",
                "heartbeat": f"{base}/heartbeat",
            },
            "layout": live.link.layout,
        },
        headers=PRIVATE_HEADERS,
    )


@router.get("/show/{token}/feed.json", name="show_feed", include_in_schema=False)
def show_feed(token: str, request: Request, session: SessionDep) -> Response:
    """The feed document (schema in services/slideshows.py); 304 when the ETag still matches."""
    live = _live(request, session, token)
    headers = {**PRIVATE_HEADERS, "ETag": live.etag}
    if request.headers.get("if-none-match") == live.etag:
        return Response(status_code=304, headers=headers)
    return Response(live.json_bytes(), media_type="application/json", headers=headers)


def _stream_state(request: Request, token: str) -> dict[str, Any] | None:
    """Version and control for the stream, from a fresh session; None when the link is gone."""
    with request_session(request) as session:
        try:
            live = _live(request, session, token)
        except NotFound:
            return None
    return {"version": live.body.version, "control": live.control}


@router.get("/show/{token}/events", name="show_events", include_in_schema=False)
async def show_events(token: str, request: Request) -> Response:
    """Server-sent events: ``state`` when the version or control changes, ``ping`` to show it
    is alive, ``gone`` when the link is revoked; ends after a few minutes (the page reconnects,
    which re-checks the link)."""
    first = await anyio.to_thread.run_sync(_stream_state, request, token)
    if first is None:
        raise NotFound("This display link does not exist or has been withdrawn.")

    initial: dict[str, Any] = first

    async def events() -> AsyncIterator[str]:
        state: dict[str, Any] | None = initial
        yield "retry: 3000\n\n"
        yield _sse("state", initial)
        last, last_sent, ends = state, time.monotonic(), time.monotonic() + STREAM_LIFETIME
        while time.monotonic() < ends:
            await anyio.sleep(STREAM_CHECK)
            if await request.is_disconnected():
                return
            state = await anyio.to_thread.run_sync(_stream_state, request, token)
            if state is None:
                yield _sse("gone", {})
                return
            if state != last:
                yield _sse("state", state)
                last, last_sent = state, time.monotonic()
            elif time.monotonic() - last_sent >= STREAM_PING:
                yield _sse("ping", {})
                last_sent = time.monotonic()

    headers = {**PRIVATE_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _sse(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get("/show/{token}/img/{item_id}", name="show_image", include_in_schema=False)
def show_image(
    token: str, item_id: str, request: Request, session: SessionDep, s: str = "slide"
) -> Response:
    """One item's slide (or ``?s=thumb``) image while the event may show it; else 404."""
    live = _live(request, session, token)
    style = "thumb" if s == "thumb" else "slide"
    key = slide_key(session=session, event=live.event, item_id=item_id, style=style)
    if key is None:
        raise NotFound("No such photo.", code="media_not_found")
    response = media_response(request.app.state.storage, key, cache_control=IMAGE_CACHE)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@router.get("/show/{token}/qr.svg", name="show_qr", include_in_schema=False)
def show_qr(token: str, request: Request, session: SessionDep) -> Response:
    """QR code of the campaign's upload page, as SVG."""
    live = _live(request, session, token)
    campaign = session.get(Campaign, live.event.campaign_id)
    if campaign is None:
        raise NotFound("No such campaign.")
    return Response(
        qr_svg(upload_url(request.app.state.settings.public_base_url, campaign)),
        media_type="image/svg+xml",
        headers={**PRIVATE_HEADERS, "Cache-Control": "private, max-age=3600"},
    )


@router.get("/show/{token}/logo", name="show_logo", include_in_schema=False)
def show_logo(token: str, request: Request, session: SessionDep) -> Response:
    """The event's logo image, when it has one."""
    live = _live(request, session, token)
    key = effective_settings(live.event).get("logo")
    if not key:
        raise NotFound("No logo.")
    return media_response(request.app.state.storage, str(key), cache_control=IMAGE_CACHE)


class Heartbeat(BaseModel):
    """What a screen reports every 30 seconds."""

    screen: str = Field(min_length=8, max_length=64)
    showing: str | None = Field(default=None, max_length=64)
    label: str = Field(default="", max_length=200)


@router.post("/show/{token}/heartbeat", name="show_heartbeat", include_in_schema=False)
def show_heartbeat(token: str, beat: Heartbeat, request: Request, session: SessionDep) -> Response:
    """Record the screen's heartbeat (CSRF header required); 204."""
    check_csrf(request, None)
    live = _live(request, session, token)
    record_heartbeat(
        session=session,
        link=live.link,
        screen_key=beat.screen,
        showing=beat.showing,
        label=beat.label,
    )
    return Response(status_code=204, headers=PRIVATE_HEADERS)
