"""The public read API and the Atom feed, for partner sites that embed a campaign.

Only approved photos whose consent includes the web appear (``services.gallery``). These
endpoints, and no others, allow any origin (CORS ``*``): they are anonymous, read-only and carry
nothing that is not already on the public gallery. Lists answer with an ETag and revalidate
(``no-cache``), so a takedown leaves every cache at the next request, yet polling stays cheap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from aggregator.deps import request_session
from aggregator.models import Campaign
from aggregator.services.campaigns import get_campaign, localized
from aggregator.services.gallery import (
    FEED_SIZE,
    MAX_PAGE_SIZE,
    Links,
    PublicItem,
    parse_filters,
    public_campaigns,
    public_items,
)
from aggregator.services.gallery_feed import atom_feed
from aggregator.web.body_cache import Body, public_body

router = APIRouter()

CORS_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag",
}
PREFLIGHT_HEADERS: Final = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match",
    "Access-Control-Max-Age": "86400",
}
API_PAGE_SIZE: Final = 20


# -- response models (they are the OpenAPI schema partners code against) -------------------


class ReadApiErrorDetail(BaseModel):
    """What went wrong, with a stable code."""

    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ReadApiError(BaseModel):
    """Every API error has this shape."""

    error: ReadApiErrorDetail


class CampaignTexts(BaseModel):
    """A campaign's texts in one language."""

    name: str
    description: str
    sign_text: str


class CampaignLinks(BaseModel):
    """Where to find a campaign's public photos."""

    page: str
    gallery: str
    items: str
    feed: str
    embed: str


class CampaignOut(BaseModel):
    """A public campaign."""

    slug: str
    name: str
    description: str
    sign_text: str
    hashtags: list[str]
    languages: list[str]
    translations: dict[str, CampaignTexts] = Field(description="Texts per interface language.")
    links: CampaignLinks


class CampaignList(BaseModel):
    """All campaigns, newest first."""

    campaigns: list[CampaignOut]


class ImageStyle(BaseModel):
    """One rendition of an image."""

    url: str
    width: int
    height: int


class ItemImage(BaseModel):
    """An image of an item: the slide (large) and thumb renditions, alt text and tone."""

    alt: str = Field(description="Alternative text as the author or a moderator wrote it.")
    color: str = Field(description="Average colour, for a placeholder while loading.")
    slide: ImageStyle
    thumb: ImageStyle


class ItemSource(BaseModel):
    """Where the item came from: upload, import, or a platform with a link to the post."""

    kind: str
    url: str | None


class Item(BaseModel):
    """One approved photo (or post with photos) whose author agreed to web publication."""

    id: str = Field(description="Random public id (never the database id).")
    url: str = Field(description="The photo's page in the gallery.")
    caption: str
    author: str = Field(description="The name as the person gave it (may be empty).")
    city: str | None
    language: str | None
    created: datetime
    source: ItemSource
    images: list[ItemImage]


class ItemPage(BaseModel):
    """A page of items, newest first; follow ``next`` for older ones."""

    items: list[Item]
    next_cursor: str | None = Field(description="Pass as ?before= to get the next page.")
    next: str | None = Field(description="The URL of the next (older) page, if any.")


ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ReadApiError, "description": "No such campaign."},
    422: {"model": ReadApiError, "description": "A parameter is not valid."},
}


# -- helpers --------------------------------------------------------------------------------


def public_links(request: Request, *, absolute: bool = True) -> Links:
    """URL builder for this app: absolute on ``public_base_url``, or site-relative paths."""
    base = request.app.state.settings.public_base_url.rstrip("/") if absolute else ""
    media_prefix = str(request.app.url_path_for("media", key="x"))[:-1]
    return Links(base=base, media_prefix=media_prefix)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag in candidates


def cached_response(request: Request, body: Body, media_type: str) -> Response:
    """``body`` with its strong ETag, CORS for any origin, and 304 when the client has it."""
    headers = {**CORS_HEADERS, "ETag": body.etag, "Cache-Control": "no-cache"}
    if _etag_matches(request.headers.get("if-none-match"), body.etag):
        return Response(status_code=304, headers=headers)
    return Response(body.content, media_type=media_type, headers=headers)


def item_out(item: PublicItem, slug: str, links: Links) -> Item:
    """The API form of a public item (an allowlist of fields, nothing more)."""
    return Item(
        id=item.public_id,
        url=links.photo(slug, item.public_id),
        caption=item.caption,
        author=item.author,
        city=item.city,
        language=item.language,
        created=item.posted_at,
        source=ItemSource(kind=item.source_kind, url=item.source_url),
        images=[
            ItemImage(
                alt=image.alt,
                color=image.color,
                slide=ImageStyle(
                    url=links.media(image.slide_key),
                    width=image.slide_width,
                    height=image.slide_height,
                ),
                thumb=ImageStyle(
                    url=links.media(image.thumb_key),
                    width=image.thumb_width,
                    height=image.thumb_height,
                ),
            )
            for image in item.images
        ],
    )


def campaign_out(campaign: Campaign, links: Links) -> CampaignOut:
    """The API form of a campaign."""
    languages = list(campaign.languages or [])
    texts = {
        lang: CampaignTexts(name=t.name, description=t.description, sign_text=t.sign_text)
        for lang in languages
        for t in (localized(campaign, lang),)
    }
    return CampaignOut(
        slug=campaign.slug,
        name=campaign.name,
        description=campaign.description,
        sign_text=campaign.sign_text,
        hashtags=list(campaign.hashtags or []),
        languages=languages,
        translations=texts,
        links=CampaignLinks(
            page=links.campaign(campaign.slug),
            gallery=links.gallery(campaign.slug),
            items=links.items(campaign.slug),
            feed=links.feed(campaign.slug),
            embed=links.embed(campaign.slug),
        ),
    )


# -- routes ---------------------------------------------------------------------------------


@router.get(
    "/api/v1/campaigns",
    name="api_campaigns",
    response_model=CampaignList,
    tags=["public"],
    summary="List campaigns",
)
async def list_campaigns(request: Request) -> Response:
    """Every campaign with links to its gallery, items, feed and embed page."""

    def make() -> bytes:
        with request_session(request) as session:
            campaigns = public_campaigns(session=session)
        links = public_links(request)
        body = CampaignList(campaigns=[campaign_out(c, links) for c in campaigns])
        return body.model_dump_json().encode()

    body = await public_body(request, ("api-campaigns",), make)
    return cached_response(request, body, "application/json")


@router.get(
    "/api/v1/campaigns/{slug}/items",
    name="api_campaign_items",
    response_model=ItemPage,
    responses=ERRORS,
    tags=["public"],
    summary="List a campaign's public photos",
)
async def list_items(
    request: Request,
    slug: str,
    before: Annotated[
        str | None, Query(max_length=64, description="Cursor from a previous page's next_cursor.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = API_PAGE_SIZE,
    city: Annotated[str | None, Query(max_length=200, description="Only this city.")] = None,
    language: Annotated[
        str | None, Query(max_length=3, description="Only this language (ISO 639 code).")
    ] = None,
) -> Response:
    """Approved photos whose authors agreed to web publication, newest first."""

    def make() -> bytes:
        with request_session(request) as session:
            campaign = get_campaign(session=session, slug=slug)
            filters = parse_filters(city, language)
            page = public_items(
                session=session, campaign=campaign, filters=filters, before=before, limit=limit
            )
        links = public_links(request)
        next_url = None
        if page.next_cursor:
            query = {"before": page.next_cursor, "limit": limit, **filters.query()}
            next_url = f"{links.items(slug)}?{urlencode(query)}"
        body = ItemPage(
            items=[item_out(item, slug, links) for item in page.items],
            next_cursor=page.next_cursor,
            next=next_url,
        )
        return body.model_dump_json().encode()

    body = await public_body(request, ("api-items", slug, before, limit, city, language), make)
    return cached_response(request, body, "application/json")


@router.get(
    "/c/{slug}/feed.xml",
    name="gallery_feed",
    tags=["public"],
    summary="Atom feed of a campaign's public photos",
    response_class=Response,
    responses={
        200: {"content": {"application/atom+xml": {}}, "description": "Atom with Media RSS."},
        404: {"content": {"text/html": {}}, "description": "No such campaign."},
        422: {"content": {"text/html": {}}, "description": "Not a valid campaign name."},
    },
)
async def feed(request: Request, slug: str) -> Response:
    """The newest public photos as Atom entries with Media RSS image elements."""

    def make() -> bytes:
        with request_session(request) as session:
            campaign = get_campaign(session=session, slug=slug)
            page = public_items(session=session, campaign=campaign, limit=FEED_SIZE)
        return atom_feed(
            campaign,
            page.items,
            public_links(request),
            # Items come newest first, so the first one is the feed's latest change.
            updated=page.items[0].posted_at if page.items else campaign.created_at,
        )

    body = await public_body(request, ("feed", slug), make)
    return cached_response(request, body, "application/atom+xml; charset=utf-8")


@router.options("/api/v1/campaigns", include_in_schema=False)
@router.options("/api/v1/campaigns/{slug}/items", include_in_schema=False)
@router.options("/c/{slug}/feed.xml", include_in_schema=False)
def preflight() -> Response:
    """CORS preflight for the read endpoints (a conditional GET sends If-None-Match)."""
    return Response(status_code=204, headers=PREFLIGHT_HEADERS)
