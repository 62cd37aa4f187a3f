"""The public read model: approved photos whose consent includes the web gallery.

Everything public (gallery pages, photo pages, the read API, the Atom feed and the embed strip)
reads through this module, and it selects only the columns it may show, so a column added to
``Submission`` later (an e-mail, an address, a file name) cannot leak by accident. Pages are
keyset-paginated on ``(posted_at, public_id)``: the random public id breaks ties without
exposing database ids, and a page boundary stays put while new photos arrive.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Integer, String, bindparam, case, cast, exists, or_, tuple_
from sqlalchemy import select as sa_select
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col, select

from aggregator.errors import Gone, InvalidInput, NotFound
from aggregator.media.core import MediaLimits
from aggregator.media.decode import fit_within
from aggregator.models import (
    Campaign,
    MediaAsset,
    Source,
    Submission,
    SubmissionStatus,
    UTCDateTime,
)

WEB_SCOPE: Final = "web"
PAGE_SIZE: Final = 24
MAX_PAGE_SIZE: Final = 100
EMBED_SIZE: Final = 12
FEED_SIZE: Final = 50
THUMB_BOX: Final = MediaLimits().thumb_size  # the pipeline fits thumbnails in this square
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_RE: Final = re.compile(r"\A(-?\d{1,17})\.([A-Za-z0-9_-]{1,32})\Z")
_LANGUAGE_RE: Final = re.compile(r"\A[a-z]{2,3}\Z")
_COLOR_RE: Final = re.compile(r"\A#[0-9a-fA-F]{6}\Z")
# A SELECT of the public columns (any number of them).
PublicSelect = Select[*tuple[Any, ...]]
_GONE: Final = frozenset({SubmissionStatus.removed, SubmissionStatus.withdrawn})


@dataclass(frozen=True, slots=True)
class PublicImage:
    """One image as the public may see it: storage keys and sizes of its derivatives."""

    slide_key: str
    slide_width: int
    slide_height: int
    thumb_key: str
    thumb_width: int
    thumb_height: int
    slide_bytes: int
    color: str
    alt: str


@dataclass(frozen=True, slots=True)
class PublicItem:
    """One approved, web-consented submission with only its publishable fields."""

    public_id: str
    caption: str
    author: str
    city: str | None
    language: str | None
    posted_at: datetime
    source_kind: str
    source_url: str | None
    images: tuple[PublicImage, ...]

    @property
    def image(self) -> PublicImage:
        """The first image (the one shown on tiles)."""
        return self.images[0]

    @property
    def cursor(self) -> str:
        """The keyset cursor that continues *after* this item."""
        return encode_cursor(self.posted_at, self.public_id)


@dataclass(frozen=True, slots=True)
class Filters:
    """Validated gallery filters; ``None`` means "any"."""

    city: str | None = None
    language: str | None = None

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list."""
        return bool(self.city or self.language)

    def query(self) -> dict[str, str]:
        """The filters as query parameters (unset ones left out)."""
        return {k: v for k, v in (("city", self.city), ("language", self.language)) if v}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of items, newest first, and the cursor of the next (older) page if any."""

    items: list[PublicItem]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Links:
    """Absolute public URLs, built on ``settings.public_base_url`` (not on the request's host)."""

    base: str
    media_prefix: str = "/media/"

    def media(self, key: str) -> str:
        """URL of a stored derivative."""
        return f"{self.base}{self.media_prefix}{key}"

    def campaign(self, slug: str) -> str:
        """The campaign page."""
        return f"{self.base}/c/{slug}"

    def gallery(self, slug: str) -> str:
        """The campaign's gallery."""
        return f"{self.base}/c/{slug}/gallery"

    def photo(self, slug: str, public_id: str) -> str:
        """One photo's page."""
        return f"{self.base}/c/{slug}/p/{public_id}"

    def feed(self, slug: str) -> str:
        """The Atom feed."""
        return f"{self.base}/c/{slug}/feed.xml"

    def embed(self, slug: str) -> str:
        """The iframe-friendly strip."""
        return f"{self.base}/c/{slug}/embed"

    def items(self, slug: str) -> str:
        """The read API's item list."""
        return f"{self.base}/api/v1/campaigns/{slug}/items"


def parse_filters(city: str | None = None, language: str | None = None) -> Filters:
    """Filters from query parameters; blank means unset, a malformed language is InvalidInput."""
    city = " ".join((city or "").split())[:200] or None
    language = (language or "").strip().lower() or None
    if language is not None and not _LANGUAGE_RE.match(language):
        raise InvalidInput("The language must be a two- or three-letter code.", field="language")
    return Filters(city=city, language=language)


def encode_cursor(posted_at: datetime, public_id: str) -> str:
    """An opaque-looking cursor: microseconds since the epoch and the public id."""
    micros = (posted_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{public_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of ``encode_cursor``; InvalidInput for anything else."""
    match = _CURSOR_RE.match(cursor)
    if match is None:
        raise InvalidInput("This page link is not valid.", field="before")
    try:
        posted_at = _EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError as exc:
        raise InvalidInput("This page link is not valid.", field="before") from exc
    return posted_at, match[2]


def visible() -> list[ColumnElement[bool]]:
    """SQL conditions every public listing applies: approved, web consent, has an image."""
    return [
        col(Submission.status) == SubmissionStatus.approved,
        # The consent list is JSON on both databases; its text form quotes each scope. Written
        # as CASE … <> 0 rather than a bare LIKE: PostgreSQL guesses that 0.5 % of rows match a
        # LIKE it has no statistics for, and then sorts every public row instead of walking
        # ix_submission_public; for "<> 0" it guesses 99.5 %, which is about the truth.
        case((cast(col(Submission.consent), String).like(f'%"{WEB_SCOPE}"%'), 1), else_=0) != 0,
        exists().where(col(MediaAsset.submission_id) == col(Submission.id)),
    ]


def _columns() -> PublicSelect:
    stmt: PublicSelect = sa_select(
        col(Submission.id),
        col(Submission.public_id),
        col(Submission.text),
        col(Submission.author_name),
        col(Submission.city),
        col(Submission.language),
        col(Submission.posted_at),
        col(Submission.url),
        col(Submission.origin),
        col(Source.kind),
    ).outerjoin(Source, col(Source.id) == col(Submission.source_id))
    return stmt


@functools.cache
def _page_statement(by_city: bool, by_language: bool, keyset: bool) -> PublicSelect:
    # Built once per shape and bound with parameters: constructing a SELECT costs more than
    # running this one, which walks ix_submission_public.
    stmt = _columns().where(col(Submission.campaign_id) == bindparam("campaign_id"), *visible())
    if by_city:
        stmt = stmt.where(col(Submission.city).in_(bindparam("cities", expanding=True)))
    if by_language:
        stmt = stmt.where(
            or_(
                col(Submission.language) == bindparam("language"),
                col(Submission.language).like(bindparam("language_prefix")),
            )
        )
    if keyset:
        stmt = stmt.where(
            tuple_(col(Submission.posted_at), col(Submission.public_id))
            < tuple_(bindparam("before_at", type_=UTCDateTime()), bindparam("before_id"))
        )
    order = (col(Submission.posted_at).desc(), col(Submission.public_id).desc())
    # The LIMIT is written into the SQL: PostgreSQL's generic plan for a prepared statement
    # with an unknown LIMIT sorts every public row instead of walking the index.
    limit = bindparam("limit", type_=Integer(), literal_execute=True)
    return stmt.order_by(*order).limit(limit)


def page_query(
    campaign_id: int, filters: Filters, before: tuple[datetime, str] | None, limit: int
) -> tuple[PublicSelect, dict[str, Any]]:
    """The SELECT under every public listing and its parameters (``bench_gallery`` times it)."""
    params: dict[str, Any] = {"campaign_id": campaign_id, "limit": limit}
    if filters.city:
        # SQLite's lower() folds ASCII only, so match the common spellings of a name instead.
        city = filters.city
        params["cities"] = sorted({city, city.lower(), city.title(), city.upper()})
    if filters.language:
        params["language"] = filters.language
        params["language_prefix"] = f"{filters.language}-%"
    if before is not None:
        params["before_at"], params["before_id"] = before
    stmt = _page_statement(bool(filters.city), bool(filters.language), before is not None)
    return stmt, params


def public_items(
    *,
    session: Session,
    campaign: Campaign,
    filters: Filters | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """A page of public items of ``campaign``, newest first, older than cursor ``before``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"The page size must be 1–{MAX_PAGE_SIZE}.", field="limit")
    position = decode_cursor(before) if before else None
    stmt, params = page_query(campaign.id or 0, filters or Filters(), position, limit + 1)
    rows = session.connection().execute(stmt, params).all()
    more = len(rows) > limit
    items = _assemble(session, rows[:limit])
    return Page(items=items, next_cursor=items[-1].cursor if more and items else None)


@functools.cache
def _item_statement() -> PublicSelect:
    stmt = _columns().add_columns(col(Submission.status), col(Submission.consent))
    return stmt.where(
        col(Submission.campaign_id) == bindparam("campaign_id"),
        col(Submission.public_id) == bindparam("public_id"),
    )


def public_item(*, session: Session, campaign: Campaign, public_id: str) -> PublicItem:
    """One public item; Gone once taken down or withdrawn, NotFound if never public."""
    row = (
        session.connection()
        .execute(_item_statement(), {"campaign_id": campaign.id, "public_id": public_id})
        .first()
    )
    if row is None:
        raise NotFound("There is no such photo.")
    status, consent = row[-2], row[-1]
    if status in _GONE:
        raise Gone("This photo has been taken down or withdrawn.")
    if status != SubmissionStatus.approved or WEB_SCOPE not in (consent or []):
        raise NotFound("There is no such photo.")
    items = _assemble(session, [row[:-2]])
    if not items:
        raise NotFound("There is no such photo.")
    return items[0]


def public_campaigns(*, session: Session) -> list[Campaign]:
    """Every campaign, newest first (campaigns are public by nature)."""
    return list(session.exec(select(Campaign).order_by(col(Campaign.created_at).desc())).all())


@functools.cache
def _assets_statement() -> PublicSelect:
    stmt: PublicSelect = (
        sa_select(
            col(MediaAsset.submission_id),
            col(MediaAsset.keys),
            col(MediaAsset.width),
            col(MediaAsset.height),
            col(MediaAsset.slide_bytes),
            col(MediaAsset.color),
            col(MediaAsset.alt_text),
        )
        .where(col(MediaAsset.submission_id).in_(bindparam("ids", expanding=True)))
        .order_by(col(MediaAsset.submission_id), col(MediaAsset.position))
    )
    return stmt


def _assemble(session: Session, rows: Any) -> list[PublicItem]:
    ids = [row[0] for row in rows]
    if not ids:
        return []
    assets = session.connection().execute(_assets_statement(), {"ids": ids}).all()
    images: dict[int, list[PublicImage]] = defaultdict(list)
    for submission_id, keys, width, height, size, color, alt in assets:
        image = _image(keys or {}, width, height, size, color, alt)
        if image is not None:
            images[submission_id].append(image)
    items = []
    for sid, public_id, text, author, city, language, posted_at, url, origin, kind in rows:
        if not images.get(sid):
            continue  # derivatives already erased: nothing to show
        items.append(
            PublicItem(
                public_id=public_id,
                caption=text or "",
                author=author or "",
                city=city or None,
                language=language or None,
                posted_at=posted_at,
                source_kind=str(kind or origin),
                source_url=url if _is_web_url(url) else None,
                images=tuple(images[sid]),
            )
        )
    return items


def _image(
    keys: dict[str, str], width: int, height: int, size: int, color: str, alt: str
) -> PublicImage | None:
    slide = keys.get("slide")
    if not slide:
        return None
    thumb = keys.get("thumb")
    thumb_size = fit_within((width, height), (THUMB_BOX, THUMB_BOX)) if thumb else (width, height)
    return PublicImage(
        slide_key=slide,
        slide_width=width,
        slide_height=height,
        thumb_key=thumb or slide,
        thumb_width=thumb_size[0],
        thumb_height=thumb_size[1],
        slide_bytes=size,
        color=color if _COLOR_RE.match(color or "") else "#444444",
        alt=alt or "",
    )


def _is_web_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("https://", "http://"))
