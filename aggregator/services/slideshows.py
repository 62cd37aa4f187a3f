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
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

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
_SPACES: Final = re.compile(r"\s+")


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
    # The slide's JSON in a live feed and its digest, kept while the row is unchanged.
    fragment: str | None = None
    digest: bytes = b""

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
    flat = _SPACES.sub(" ", text).strip()
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
    memo: dict[tuple[Any, ...], Slide | None] | None = None,
) -> list[Slide]:
    """The event's photo slides in showing order (see the module docstring for the rules)."""
    slides = query_slides(session=session, event=event, scope=scope, memo=memo)
    return arrange(slides, effective_settings(event)["order"], event.id or 0, limit=limit)


def query_slides(
    *,
    session: Session,
    event: Event,
    scope: str = "projection",
    submission_ids: Iterable[int] | None = None,
    memo: dict[tuple[Any, ...], Slide | None] | None = None,
) -> list[Slide]:
    """The event's slides in no particular order, duplicates not yet removed (``arrange``).

    ``submission_ids`` limits the query to those submissions (a feed updating only what
    changed). ``memo`` (kept by the caller between full queries with the same scope) maps
    database rows to the slides made from them, so unchanged rows reuse their slide; it is
    left holding exactly this query's rows.
    """
    settings = effective_settings(event)
    filters = settings["filters"]
    # A list of columns: sqlmodel's select() is typed for a handful of columns at most.
    columns: list[Any] = [
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
        # Times as text too: converted only for rows not seen before (see _slide).
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
    ]
    query = (
        sql_select(*columns)
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
    slides: list[Slide] = []
    wanted = f'"{scope}"'
    previous = memo if memo is not None else {}
    current: dict[tuple[Any, ...], Slide | None] = {}
    # Core execution: rows as plain tuples, without the ORM's per-row bookkeeping.
    for row in session.connection().execute(query).all():
        key = tuple(row)
        slide = previous[key] if key in previous else _slide(key, wanted)
        current[key] = slide
        if slide is None or (cities and slide.city.casefold() not in cities):
            continue
        slides.append(slide)
    if memo is not None and submission_ids is None:
        memo.clear()
        memo.update(current)
    return slides


def arrange(slides: list[Slide], order: str, seed: int, *, limit: int | None = None) -> list[Slide]:
    """Slides in showing order, each image (by sha256) once: its first place wins."""
    seen: set[str] = set()
    unique = []
    for slide in _ordered(list(slides), order, seed):
        if slide.sha256 not in seen:
            seen.add(slide.sha256)
            unique.append(slide)
    return unique[:limit] if limit is not None else unique


def _slide(row: tuple[Any, ...], wanted_scope: str) -> Slide | None:
    """A slide from one query row, or None without the consent scope or a slide image."""
    (
        sid, public_id, name, handle, city, text, language, consent, pinned_at, posted_at,
        url, position, keys, width, height, color, alt, sha, kind, source_name,
    ) = row  # fmt: skip
    if wanted_scope not in (consent or "") or '"slide"' not in (keys or ""):
        return None
    message = clean_message(text or "")
    pinned_at, posted_at = _as_utc(pinned_at), _as_utc(posted_at)
    return Slide(
        id=public_id if position == 0 else f"{public_id}.{position}",
        submission_id=sid,
        submission=public_id,
        keys_json=keys,
        width=width,
        height=height,
        color=color,
        alt=alt or "",
        name=(name or "").strip(),
        city=(city or "").strip(),
        message=message,
        source=_source_label(kind, source_name, handle),
        source_url=url,
        language=language,
        direction=text_direction(message or name or "", language),
        pinned=pinned_at is not None,
        posted_at=posted_at or datetime.min.replace(tzinfo=UTC),
        position=position,
        pinned_at=pinned_at,
        sha256=sha,
    )


def _as_utc(value: object) -> datetime | None:
    """A timestamp column read as text (SQLite: naive UTC; PostgreSQL: with offset) or as a
    datetime, as an aware UTC datetime."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _ordered(slides: list[Slide], order: str, seed: int) -> list[Slide]:
    # Sorts are stable: pinned items (newest pin first) are lifted out after the main order.
    if order == "shuffled":

        def shuffle_key(slide: Slide) -> str:
            return hashlib.sha256(f"{seed}:{slide.id}".encode()).hexdigest()

        slides.sort(key=shuffle_key)
    elif order == "chronological":
        slides.sort(key=lambda s: (s.posted_at, s.submission_id, s.position))
    else:
        slides.sort(key=lambda s: (s.posted_at, s.submission_id, -s.position), reverse=True)
    pinned = [s for s in slides if s.pinned]
    pinned.sort(key=lambda s: s.pinned_at or s.posted_at, reverse=True)
    return pinned + [s for s in slides if not s.pinned]


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
