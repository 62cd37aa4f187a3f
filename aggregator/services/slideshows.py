"""What an event shows: its ordered photo slides, and the schema of the display feed.

``build_slides`` selects the photos: APPROVED submissions of the event's campaign(s) whose
consent includes the scope (``projection`` for screens and exports; ``archive`` for museum
packages), after the event's filters (sources, cities, languages, date range); one slide per
image, exact duplicates (same sha256) once. Pinned items come first (most recently pinned
first), then the event's order: ``chronological`` (oldest first), ``newest_replay`` (newest
first; screens replay the list when nothing new arrives) or ``shuffled`` (a hash of the
event id and the item id, so every screen and every export agrees, and an item arriving later
does not reshuffle the others).

``slideshows_document.feed_document`` builds the JSON every display reads (live slideshow,
wall layout, offline bundle). Its schema, which the wall (issue 8) relies on::

    {
      "version": "<16 hex>",            # changes whenever items or settings change
      "event": {"name", "lang", "dir", "title"},
      "settings": {"interval", "transition", "order", "captions": [...], "theme",
                   "qr_every", "silence_seconds", "silence_slide", "logo": url|null},
      "intro": {"title", "text"} | null, "closing": {...} | null,
      "qr": {"url", "image": url, "text"} | null,
      "strings": {"silence", "qr", "paused", "offline", "empty", "help": {...}},
      "items": [{"id": public id (+ ".N" for the N-th image of a post), "submission",
                 "image": url, "thumb": url, "width", "height", "color": "#rrggbb",
                 "alt", "pinned": bool, "posted_at": iso,
                 "caption": {"name", "city", "message", "source", "lang", "dir"}}],
      "control": {"blank", "paused", "silence_until": iso|null, "seq",
                  "command": {"seq", "action": "next"|"prev"|"jump", "item"} | null}
    }

Captions only carry the fields the event shows (others are ""). The ``control`` part is the
host's live state (``control_state``); ``version`` does not cover it — displays get control
changes at once over server-sent events and compare ``control.seq``. A ``server_time`` (ISO)
comes last, for the silence countdown.

Endpoints of a share link (``web/routes/slideshow.py``): ``/show/{token}/feed.json`` (ETag,
``If-None-Match`` → 304); ``/show/{token}/events`` (server-sent events: ``state`` with
``{"version", "control"}`` on every change, ``ping`` every 15 s, ``gone`` when the link is
revoked); item images at ``/show/{token}/img/{id}?v=…`` (``&s=thumb`` for the thumbnail),
404 once the item may no longer be shown; ``POST /show/{token}/heartbeat`` with
``{"screen", "showing", "label"}`` and the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Text, cast
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from aggregator.models import Event, MediaAsset, Source, Submission, SubmissionStatus
from aggregator.services.slideshows_settings import effective_settings

MESSAGE_LIMIT: Final = 280
SOURCE_NAMES: Final = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "rss": "RSS",
    "telegram": "Telegram",
}


@dataclass(slots=True)
class Slide:
    """One photo as shown: ids, image keys and size, and its caption parts (raw, unfiltered)."""

    id: str
    submission_id: int
    submission: str
    keys_json: str  # MediaAsset.keys as stored; parsed on use (the feed never needs it)
    width: int
    height: int
    color: str
    alt: str
    name: str
    city: str
    message: str
    source: str
    source_url: str | None
    language: str | None
    direction: str
    pinned: bool
    posted_at: datetime
    position: int = 0
    pinned_at: datetime | None = None
    sha256: str = ""

    @property
    def keys(self) -> dict[str, str]:
        """Storage keys of the image's derivatives by style ("slide", "thumb")."""
        parsed = json.loads(self.keys_json) if self.keys_json else {}
        return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}


def text_direction(text: str, language: str | None = None) -> str:
    """'rtl' when the first strong character (or the language) is right-to-left, else 'ltr'."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in {"R", "AL"}:
            return "rtl"
        if kind == "L":
            return "ltr"
    return "rtl" if (language or "").split("-")[0] in {"he", "yi", "ar", "fa"} else "ltr"


def clean_message(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The post's text on one paragraph, cut at a word boundary near ``limit`` characters."""
    # split() takes the same Unicode whitespace as the regex \s+ did, several times faster.
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(" ,.;:—-") + "…"


def campaign_ids(event: Event, settings: dict[str, Any] | None = None) -> list[int]:
    """The event's main campaign id followed by any extra campaigns from its settings."""
    settings = settings or effective_settings(event)
    extra = [int(i) for i in settings.get("extra_campaigns") or [] if str(i).isdigit()]
    return list(dict.fromkeys([event.campaign_id, *extra]))


def _day_start(value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def _source_label(kind: str | None, source_name: str | None, handle: str | None) -> str:
    if kind is None:
        return ""
    platform = SOURCE_NAMES.get(kind, kind)
    if handle:
        return f"{handle} · {platform}"
    return f"{source_name} · {platform}" if source_name and kind == "rss" else platform


def build_slides(
    *,
    session: Session,
    event: Event,
    scope: str = "projection",
    limit: int | None = None,
) -> list[Slide]:
    """The event's photo slides in showing order (see the module docstring for the rules)."""
    slides = [slide_from_row(row) for row in slide_rows(session=session, event=event, scope=scope)]
    return arrange(slides, effective_settings(event)["order"], event.id or 0, limit=limit)


# What a slide is made of, in the order of ``SlideRow``.
_COLUMNS: Final[tuple[Any, ...]] = (
    Submission.id,
    Submission.public_id,
    Submission.author_name,
    Submission.author_handle,
    Submission.city,
    Submission.text,
    Submission.language,
    # JSON read as text: decoding 10,000 small documents per feed build costs more than
    # everything else; the consent test is a substring match on the quoted scope name.
    cast(Submission.consent, Text),
    # Times as text too: fromisoformat on the text is cheaper than the driver's conversion.
    cast(Submission.pinned_at, Text),
    cast(Submission.posted_at, Text),
    Submission.url,
    MediaAsset.position,
    cast(MediaAsset.keys, Text),
    MediaAsset.width,
    MediaAsset.height,
    MediaAsset.color,
    MediaAsset.alt_text,
    MediaAsset.sha256,
    Source.kind,
    Source.name,
)
_BATCH: Final = 500
# One database row of ``slide_rows`` (plain values, in the order of ``_COLUMNS``).
SlideRow = tuple[Any, ...]


def slide_rows(
    *,
    session: Session,
    event: Event,
    scope: str = "projection",
    submission_ids: Iterable[int] | None = None,
) -> list[SlideRow]:
    """The rows of every image the event may show, in no particular order: APPROVED
    submissions of its campaign(s) with ``scope`` in their consent and a slide derivative,
    after the event's filters. ``submission_ids`` limits them to those submissions.

    Plain tuples (Core, no ORM objects): a caller can keep them as cache keys, and the
    garbage collector stops tracking tuples of plain values (it would scan SQLAlchemy rows
    on every full collection). ``slide_from_row`` turns one into a ``Slide``.
    """
    settings = effective_settings(event)
    filters = settings["filters"]
    query = (
        sql_select(*_COLUMNS)
        .join(MediaAsset, col(MediaAsset.submission_id) == col(Submission.id))
        .outerjoin(Source, col(Source.id) == col(Submission.source_id))
        .where(
            col(Submission.campaign_id).in_(campaign_ids(event, settings)),
            col(Submission.status) == SubmissionStatus.approved,
        )
    )
    if filters.get("sources"):
        query = query.where(col(Submission.source_id).in_(filters["sources"]))
    if filters.get("languages"):
        query = query.where(col(Submission.language).in_(filters["languages"]))
    start, end = _day_start(filters.get("date_from")), _day_start(filters.get("date_to"), end=True)
    if start is not None:
        query = query.where(col(Submission.posted_at) >= start)
    if end is not None:
        query = query.where(col(Submission.posted_at) < end)
    if submission_ids is not None:
        query = query.where(col(Submission.id).in_(list(submission_ids)))
    cities = {c.casefold() for c in filters.get("cities") or []}
    wanted = f'"{scope}"'
    # Consent and slide image tested in Python on the JSON text (see _COLUMNS), the city
    # after the same strip as the caption's, so the filter matches what a screen shows.
    # Fetched in batches so that each SQLAlchemy Row dies young: 5,000 of them alive at once
    # reached the garbage collector's oldest generation and brought on full collections.
    result = session.connection().execute(query)
    rows = (tuple(row) for batch in result.partitions(_BATCH) for row in batch)
    return [
        row
        for row in rows
        if wanted in (row[7] or "")
        and '"slide"' in (row[12] or "")
        and (not cities or (row[4] or "").strip().casefold() in cities)
    ]


class Arrangeable(Protocol):
    """What ``arrange`` orders: a slide, or a cached item of a live feed."""

    @property
    def id(self) -> str: ...
    @property
    def submission_id(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def posted_at(self) -> datetime: ...
    @property
    def pinned_at(self) -> datetime | None: ...


_Item = TypeVar("_Item", bound=Arrangeable)


def arrange(slides: list[_Item], order: str, seed: int, *, limit: int | None = None) -> list[_Item]:
    """Slides in showing order, each image (by sha256) once: its first place wins."""
    seen: set[str] = set()
    unique = []
    for slide in _ordered(list(slides), order, seed):
        if slide.sha256 not in seen:
            seen.add(slide.sha256)
            unique.append(slide)
    return unique[:limit] if limit is not None else unique


def slide_from_row(row: SlideRow) -> Slide:
    """The slide of one ``slide_rows`` row."""
    return Slide(*slide_values(row))


def slide_values(row: SlideRow) -> tuple[Any, ...]:
    """The field values of one ``slide_rows`` row's ``Slide``, in field order (positional:
    keyword arguments made ``Slide`` four times slower; the live feed serializes the values
    without making the object)."""
    (
        sid, public_id, name, handle, city, text, language, _consent, pinned_at, posted_at,
        url, position, keys, width, height, color, alt, sha, kind, source_name,
    ) = row  # fmt: skip
    message = clean_message(text or "")
    name = (name or "").strip()
    pinned = _as_utc(pinned_at)
    return (
        public_id if position == 0 else f"{public_id}.{position}",  # id
        sid,  # submission_id
        public_id,  # submission
        keys,  # keys_json
        width,
        height,
        color,
        alt or "",  # alt
        name,
        (city or "").strip(),  # city
        message,
        _source_label(kind, source_name, handle),  # source
        url,  # source_url
        language,
        text_direction(message or name, language),  # direction
        pinned is not None,  # pinned
        _as_utc(posted_at) or _NEVER,  # posted_at
        position,
        pinned,  # pinned_at
        sha,  # sha256
    )


_NEVER: Final = datetime.min.replace(tzinfo=UTC)


def _as_utc(value: object) -> datetime | None:
    """A timestamp column read as text (SQLite: naive UTC; PostgreSQL: with offset) or as a
    datetime, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:  # parsing again is several times cheaper than .replace()
            return datetime.fromisoformat(f"{value}+00:00")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _ordered(slides: list[_Item], order: str, seed: int) -> list[_Item]:
    # Sorts are stable: pinned items (newest pin first) are lifted out after the main order.
    if order == "shuffled":

        def shuffle_key(slide: _Item) -> str:
            return hashlib.sha256(f"{seed}:{slide.id}".encode()).hexdigest()

        slides.sort(key=shuffle_key)
    elif order == "chronological":
        slides.sort(key=lambda s: (s.posted_at, s.submission_id, s.position))
    else:
        slides.sort(key=lambda s: (s.posted_at, s.submission_id, -s.position), reverse=True)
    pinned = [s for s in slides if s.pinned_at is not None]
    pinned.sort(key=lambda s: s.pinned_at or s.posted_at, reverse=True)
    return pinned + [s for s in slides if s.pinned_at is None]


def slide_key(
    *,
    session: Session,
    event: Event,
    item_id: str,
    style: str = "slide",
    scope: str = "projection",
) -> str | None:
    """Storage key of one item's image if the event may show it now, else None.

    Re-checked on every image request, so a takedown or a withdrawn consent answers 404 even
    to a screen that still holds the old feed.
    """
    public_id, _, suffix = item_id.partition(".")
    position = int(suffix) if suffix.isdigit() else 0
    if suffix and not suffix.isdigit():
        return None
    row = session.execute(
        select(Submission.campaign_id, Submission.status, Submission.consent, MediaAsset.keys)
        .join(MediaAsset, col(MediaAsset.submission_id) == col(Submission.id))
        .where(Submission.public_id == public_id, MediaAsset.position == position)
    ).first()
    if row is None:
        return None
    campaign_id, status, consent, keys = row
    if (
        campaign_id not in campaign_ids(event)
        or status != SubmissionStatus.approved
        or scope not in (consent or [])
    ):
        return None
    keys = keys or {}
    key = keys.get(style) or keys.get("slide")
    return str(key) if key else None
