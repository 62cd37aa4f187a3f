"""The public gallery: a calm grid of approved, web-consented photos, one page per photo,
and a small iframe-friendly strip partner sites can embed.

No likes, no counters: a memorial, not a feed to compete in. Everything shown comes from
``services.gallery``, which selects only publishable fields.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from babel.dates import format_date
from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from aggregator import i18n
from aggregator.deps import request_session
from aggregator.services.campaigns import get_campaign, localized
from aggregator.services.gallery import (
    EMBED_SIZE,
    PAGE_SIZE,
    PublicItem,
    parse_filters,
    public_item,
    public_items,
)
from aggregator.web.body_cache import public_body
from aggregator.web.routes.api_read import public_links
from aggregator.web.templating import render

router = APIRouter()


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


# The embed page alone may be framed, by any site; it runs no script and submits no form.
EMBED_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors *"
    ),
    # Browsers ignore X-Frame-Options when frame-ancestors is present; ALLOWALL keeps the
    # middleware from adding DENY for the few that do not.
    "X-Frame-Options": "ALLOWALL",
    "Cache-Control": "no-cache",
}
PAGE_HEADERS: Final = {"Cache-Control": "no-cache"}
# How each origin is named under a photo; platform names are not translated.
SOURCE_LABELS: Final = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "telegram": "Telegram",
    "rss": N_("a web feed"),
    "collected": N_("a web feed"),
    "upload": N_("shared on this site"),
    "import": N_("sent to the organisers"),
}
# services.gallery raises these; listed here so the gallery catalogs translate the error pages.
ERROR_MESSAGES: Final = (
    N_("There is no such photo."),
    N_("This photo has been taken down or withdrawn."),
    N_("This page link is not valid."),
    N_("The language must be a two- or three-letter code."),
)


def _date(item: PublicItem, lang: str) -> str:
    return str(format_date(item.posted_at, format="long", locale=i18n.locale(lang)))


def _query(**params: str | None) -> str:
    clean = {k: v for k, v in params.items() if v}
    return f"?{urlencode(clean)}" if clean else ""


async def _page(
    request: Request,
    name: str,
    key: tuple[Hashable, ...],
    context: Callable[[], dict[str, Any]],
    headers: Mapping[str, str],
) -> Response:
    """Render ``name`` with ``context()`` (which queries), or reuse the body rendered for the
    very same request (``key``: the route's parameters) since the last commit."""
    full_key = (name, str(request.base_url), request.state.lang, *key)
    body = await public_body(
        request, full_key, lambda: bytes(render(request, name, context()).body)
    )
    return HTMLResponse(body.content, headers=dict(headers))


@router.get("/c/{slug}/gallery", name="gallery", include_in_schema=False)
async def gallery(
    request: Request,
    slug: str,
    before: Annotated[str | None, Query(max_length=64)] = None,
    city: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[str | None, Query(max_length=3)] = None,
) -> Response:
    """One page of the grid, newest first, with an "older photos" link."""
    lang = request.state.lang

    def context() -> dict[str, Any]:
        with request_session(request) as session:
            campaign = get_campaign(session=session, slug=slug)
            filters = parse_filters(city, language)
            page = public_items(
                session=session, campaign=campaign, filters=filters, before=before, limit=PAGE_SIZE
            )
        older = _query(before=page.next_cursor, **filters.query()) if page.next_cursor else None
        return {
            "campaign": campaign,
            "text": localized(campaign, lang),
            "items": page.items,
            "filters": filters,
            "older_url": older,
            "newest_url": _query(**filters.query()) if before else None,
            "links": public_links(request),
            "paths": public_links(request, absolute=False),
            "filter_languages": list(i18n.LANGUAGE_NAMES.items()),
        }

    key = (slug, before, city, language)
    return await _page(request, "gallery/gallery.html", key, context, PAGE_HEADERS)


@router.get("/c/{slug}/p/{public_id}", name="gallery_photo", include_in_schema=False)
async def photo(request: Request, slug: str, public_id: str) -> Response:
    """One photo: the large image, caption, author as given, city, date and alt text."""
    lang = request.state.lang
    public_id = public_id[:64]

    def context() -> dict[str, Any]:
        with request_session(request) as session:
            campaign = get_campaign(session=session, slug=slug)
            item = public_item(session=session, campaign=campaign, public_id=public_id)
        return {
            "campaign": campaign,
            "text": localized(campaign, lang),
            "item": item,
            "date": _date(item, lang),
            "links": public_links(request),
            "paths": public_links(request, absolute=False),
            "source_label": SOURCE_LABELS.get(item.source_kind, ""),
        }

    return await _page(request, "gallery/photo.html", (slug, public_id), context, PAGE_HEADERS)


@router.get("/c/{slug}/embed", name="gallery_embed", include_in_schema=False)
async def embed(request: Request, slug: str) -> Response:
    """A strip of the newest photos for an iframe on a partner site."""
    lang = request.state.lang

    def context() -> dict[str, Any]:
        with request_session(request) as session:
            campaign = get_campaign(session=session, slug=slug)
            page = public_items(session=session, campaign=campaign, limit=EMBED_SIZE)
        return {
            "campaign": campaign,
            "text": localized(campaign, lang),
            "items": page.items,
            "paths": public_links(request, absolute=False),
        }

    return await _page(request, "gallery/embed.html", (slug,), context, EMBED_HEADERS)
