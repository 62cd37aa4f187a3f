"""The live feed of a share link, cached so that many screens polling cost almost nothing.

Every change that can alter a feed goes through an audited service (ingest, approval,
takedown, withdrawal, caption and alt-text edits, rotation, pinning: each adds an AuditEntry),
so a feed is rebuilt when ``max(AuditEntry.id)`` or the event's settings change, and fully
at least every ``max_age`` seconds as a safety net for changes made outside the services. The
check is one indexed query. A rebuild requeries only the submissions audited since the last
one and reuses every other item, so after one approval only that item is read and converted.
The periodic full re-read reuses the item of every row that comes back unchanged, and the
whole items part when nothing moved. The control part is always read fresh: "blank all
screens" must not wait.

Cost (5,000 items): the database rows dominate, so the per-item work is kept to plain
tuples (``ItemJson``), all items are written in one ``orjson`` call, and the body is kept as
bytes.
"""

from __future__ import annotations

import hashlib
import json
import operator
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

import orjson
from sqlalchemy import func
from sqlmodel import Session, col, select

from aggregator import i18n
from aggregator.errors import NotFound
from aggregator.models import AuditEntry, Campaign, Event, ShareLink, utcnow
from aggregator.services.events import active_share_link
from aggregator.services.slideshows import (
    Slide,
    SlideRow,
    arrange,
    slide_rows,
    slide_values,
)
from aggregator.services.slideshows_control import control_state
from aggregator.services.slideshows_document import feed_document, upload_url
from aggregator.services.slideshows_settings import effective_settings

DEFAULT_MAX_AGE: Final = 30.0
MAX_ENTRIES: Final = 500
# More changed submissions than this since the last build: query everything again.
MAX_INCREMENTAL: Final = 200
THUMB: Final = "&s=thumb"  # an image address's query for its thumbnail


class FeedItem(NamedTuple):
    """One image of a cached feed: what ``arrange`` orders it by, and the values of its JSON
    object (``ItemJson``; ``items_json`` writes them).

    The cache keeps items as plain tuples (``ItemJson.item``, read with ``FeedItem._make``):
    the garbage collector stops tracking exact tuples of plain values, but not named tuples
    or objects, and 5,000 kept objects per feed made full collections several times more
    frequent (up to ~100 ms each, measured).
    """

    id: str
    submission_id: int
    position: int
    sha256: str
    posted_at: datetime
    pinned_at: datetime | None
    content: tuple[Any, ...]


_Plain = tuple[Any, ...]  # a FeedItem as an exact tuple, as the cache keeps it
_SUBMISSION_ID: Final = FeedItem._fields.index("submission_id")


@dataclass(frozen=True)
class FeedBody:
    """A feed's items part serialized once: ``head`` is the UTF-8 JSON object minus its
    closing brace; ``parts`` (the items' contents) and ``items`` (their JSON array, bytes)
    are kept so that a rebuild finding the same items in the same order reuses them."""

    version: str
    head: bytes
    parts: tuple[tuple[Any, ...], ...]  # the items' contents (FeedItem.content), in order
    items: bytes
    items_digest: bytes


@dataclass(frozen=True)
class LiveFeed:
    """What one request needs: the link, its event, the cached body and fresh control state."""

    link: ShareLink
    event: Event
    body: FeedBody
    control: dict[str, Any]

    @property
    def etag(self) -> str:
        """Strong validator covering items, settings and control."""
        raw = json.dumps(self.control, sort_keys=True).encode()
        return f'"{self.body.version}.{hashlib.blake2b(raw, digest_size=4).hexdigest()}"'

    def json_bytes(self) -> bytes:
        """The full feed document: cached items part plus control and the server's clock."""
        tail = json.dumps(
            {"control": self.control, "server_time": utcnow().isoformat()},
            separators=(",", ":"),
        )
        # Bytes all along: re-encoding the 2 MB head on every poll cost more than the rest.
        return b"".join((self.body.head, b",", tail[1:].encode()))


@dataclass
class _Entry:
    fingerprint: tuple[Any, ...]
    built_at: float  # of the last full query
    body: FeedBody
    # The last full query's rows and their slides: an unchanged row reuses its slide and JSON.
    memo: dict[SlideRow, _Plain] = field(default_factory=dict)
    found: list[_Plain] = field(default_factory=list)  # all items, before ``arrange``


def display_language(event: Event, requested: str, enabled: tuple[str, ...]) -> str:
    """The event's on-screen language when set and enabled, else the visitor's."""
    chosen = effective_settings(event).get("language")
    return chosen if chosen in enabled else requested


def fingerprint(session: Session, event: Event) -> tuple[Any, ...]:
    """What a cached feed depends on: the newest audit row, the event's name and settings."""
    newest = session.exec(select(func.max(AuditEntry.id))).one()
    settings = json.dumps(event.settings or {}, sort_keys=True, default=str)
    return (newest, event.name, event.campaign_id, settings)


class FeedCache:
    """Per-process cache of serialized feed bodies; safe to share between threads."""

    def __init__(self, ttl: float = DEFAULT_MAX_AGE) -> None:
        # ttl: the longest a feed is reused without a rebuild, even when nothing was audited.
        self.max_age = ttl
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._entries: dict[tuple[int, str], _Entry] = {}

    def clear(self) -> None:
        """Forget everything (the next request of every link rebuilds)."""
        with self._lock:
            self._entries.clear()

    def live(
        self,
        *,
        session: Session,
        token: str,
        lang: str,
        enabled: tuple[str, ...],
        public_base_url: str,
    ) -> LiveFeed:
        """The feed for a share token; NotFound when the link is unknown, revoked or expired."""
        link = active_share_link(session=session, token=token)
        event = session.get(Event, link.event_id)
        if event is None:
            raise NotFound("This display link does not exist or has been withdrawn.")
        lang = display_language(event, lang, enabled)
        key = (link.id or 0, lang)
        current = fingerprint(session, event)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.fingerprint != current or now - entry.built_at > self.max_age:
            # One rebuild at a time: screens polling together after a change wait for it
            # rather than all doing the same work.
            with self._build_lock:
                with self._lock:
                    latest = self._entries.get(key)
                if latest is not None and latest is not entry and latest.fingerprint == current:
                    entry = latest
                else:
                    entry = self._rebuild(
                        session, event, link, lang, public_base_url, latest, current
                    )
                    with self._lock:
                        if len(self._entries) >= MAX_ENTRIES:  # bounded: old links' go
                            self._entries.clear()
                        self._entries[key] = entry
        return LiveFeed(link=link, event=event, body=entry.body, control=control_state(event))

    def _rebuild(
        self,
        session: Session,
        event: Event,
        link: ShareLink,
        lang: str,
        public_base_url: str,
        entry: _Entry | None,
        current: tuple[Any, ...],
    ) -> _Entry:
        """Requery only the submissions audited since the last build when that is enough;
        everything after a settings change, past ``max_age``, or after many changes."""
        now = time.monotonic()
        same_settings = entry is not None and entry.fingerprint[1:] == current[1:]
        changed: list[int] | None = None
        if entry is not None and same_settings and now - entry.built_at <= self.max_age:
            changed = changed_submissions(session, entry.fingerprint[0], current[0])
        item_json = ItemJson(show_path(link.token), effective_settings(event)["captions"], lang)
        if entry is not None and changed is not None:
            # The old entry may still be read by another request: build new lists.
            gone = set(changed)
            found = [t for t in entry.found if t[_SUBMISSION_ID] not in gone]
            rows = slide_rows(session=session, event=event, submission_ids=changed)
            found.extend(item_json.item(row) for row in rows)
            built_at, memo = entry.built_at, entry.memo
        else:
            # Items stay valid while settings and language are the same (the fingerprint).
            known = entry.memo if entry is not None and same_settings else {}
            memo = {}
            for row in slide_rows(session=session, event=event):
                memo[row] = known.get(row) or item_json.item(row)
            found = list(memo.values())
            built_at = now
        previous = entry.body if entry is not None and same_settings else None
        if previous is not None and entry is not None and _same(entry.found, found):
            parts = previous.parts  # the very same items in the same order: same arrangement
        else:
            items = arrange(
                list(map(FeedItem._make, found)), effective_settings(event)["order"], event.id or 0
            )
            parts = tuple(item.content for item in items)
        body = build_body(
            session=session,
            event=event,
            link=link,
            lang=lang,
            public_base_url=public_base_url,
            parts=parts,
            previous=previous,
        )
        return _Entry(current, built_at, body, memo, found)


def changed_submissions(session: Session, after: int | None, upto: int | None) -> list[int] | None:
    """Submissions audited after audit row ``after`` up to ``upto``; None when a full
    rebuild is simpler (no earlier mark, or too many changes)."""
    if after is None or upto is None:
        return None
    ids = session.exec(
        select(AuditEntry.submission_id)
        .where(col(AuditEntry.id) > after, col(AuditEntry.id) <= upto)
        .distinct()
        .limit(MAX_INCREMENTAL + 1)
    ).all()
    if len(ids) > MAX_INCREMENTAL:
        return None
    return [int(i) for i in ids if i is not None]


def show_path(token: str) -> str:
    """URL path of a share link's display (relative to the site root)."""
    return f"/show/{token}"


class ItemJson:
    """Turns ``slide_rows`` rows into feed items for one link, event and language.

    An item's JSON object is kept as a tuple of its values (``content``) and the whole array
    is written at once by ``items_json``: a tuple costs less to make and keep than a dict
    (the collector stops tracking tuples of plain values), and one ``orjson`` call for all
    items is several times faster than encoding them one by one. A test holds the result
    equal to ``json.dumps`` of the schema's definition (``slideshows_document.feed_item``).
    """

    def __init__(self, base: str, fields: Iterable[str], lang: str) -> None:
        shown = set(fields)
        self.name, self.city = "name" in shown, "city" in shown
        self.message, self.source = "message" in shown, "source" in shown
        # The content hash in the URL: a rotated photo gets a new address, not a stale cache.
        self.images = f"{base}/img/"
        gettext = i18n.translations(lang).gettext
        self.alt_named = gettext("Photo shared by %(name)s")
        self.alt_anonymous = gettext("A photo shared in remembrance")

    def item(self, row: SlideRow) -> _Plain:
        """The feed item of one ``slide_rows`` row, as the cache keeps it (see FeedItem): the
        fields ``arrange`` orders by, then the content."""
        (
            item_id, submission_id, submission, _keys, width, height, color, alt, name, city,
            message, source, _url, language, direction, pinned, posted_at, position, pinned_at,
            sha,
        ) = slide_values(row)  # fmt: skip
        if not alt:
            alt = self.alt_named % {"name": name} if name else self.alt_anonymous
        content = (
            item_id,
            submission,
            self.slide_image(item_id, sha),  # image
            width,
            height,
            color,
            alt,
            pinned,
            posted_at,
            name if self.name else "",
            city if self.city else "",
            message if self.message else "",
            source if self.source else "",
            language or "",
            direction,
        )
        return (item_id, submission_id, position, sha, posted_at, pinned_at, content)

    def slide_image(self, item_id: str, sha256: str) -> str:
        """Address of an item's slide-sized image; its thumbnail adds ``THUMB``."""
        return f"{self.images}{item_id}?v={sha256[:10]}"

    def image_url(self, slide: Slide, style: str) -> str:
        """Address of the slide's image (``style`` "slide" or "thumb")."""
        url = self.slide_image(slide.id, slide.sha256)
        return url + THUMB if style == "thumb" else url


def items_json(contents: Iterable[tuple[Any, ...]]) -> bytes:
    """The feed's ``items`` array (UTF-8 JSON) of items given by their contents."""
    objects = []
    for content in contents:
        (
            item_id, submission, image, width, height, color, alt, pinned, posted_at, name,
            city, message, source, language, direction,
        ) = content  # fmt: skip
        objects.append(
            {
                "id": item_id,
                "submission": submission,
                "image": image,
                "thumb": image + THUMB,
                "width": width,
                "height": height,
                "color": color,
                "alt": alt,
                "pinned": pinned,
                "posted_at": posted_at,  # orjson writes what datetime.isoformat() does
                "caption": {
                    "name": name,
                    "city": city,
                    "message": message,
                    "source": source,
                    "lang": language,
                    "dir": direction,
                },
            }
        )
    return orjson.dumps(objects)


def build_body(
    *,
    session: Session,
    event: Event,
    link: ShareLink,
    lang: str,
    public_base_url: str,
    parts: tuple[tuple[Any, ...], ...],
    previous: FeedBody | None = None,
) -> FeedBody:
    """Serialize the feed (without control) with the items' contents ``parts`` in showing order
    for one link and language; ``previous`` (a body built with the same settings and
    language) lends its items part when it holds the very same parts in the same order."""
    base = show_path(link.token)
    campaign = session.get(Campaign, event.campaign_id)
    settings = effective_settings(event)
    gettext = i18n.translations(lang).gettext
    qr = None
    if campaign is not None:
        qr = {
            "url": upload_url(public_base_url, campaign),
            "image": f"{base}/qr.svg",
            "text": gettext("Add your photo"),
        }
    document = feed_document(
        event=event,
        campaign=campaign,
        slides=[],
        lang=lang,
        direction=i18n.direction(lang),
        image_url=ItemJson(base, (), lang).image_url,
        gettext=gettext,
        qr=qr,
        logo_url=f"{base}/logo" if settings.get("logo") else None,
        with_version=False,
    )
    if previous is not None and _same(previous.parts, parts):
        items, items_digest = previous.items, previous.items_digest
    else:
        items = items_json(parts)
        # SHA-256 runs on the CPU's SHA instructions: twice as fast as BLAKE2b on 2 MB here.
        items_digest = hashlib.sha256(items).digest()
    # The document is serialized once and the items spliced in; the version covers the
    # document and, through their digest, every item in order.
    document.pop("items")
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    version = hashlib.blake2b(raw + items_digest, digest_size=8).hexdigest()
    head = b"".join((b'{"version":"', version.encode(), b'",', raw[1:-1], b',"items":', items))
    return FeedBody(version=version, head=head, parts=parts, items=items, items_digest=items_digest)


def _same(old: Sequence[object], new: Sequence[object]) -> bool:
    """Whether two sequences hold the very same objects (an unchanged row's item and content
    are kept, a changed row's are new) in the same order."""
    return len(old) == len(new) and all(map(operator.is_, old, new))
