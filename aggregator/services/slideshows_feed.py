"""The live feed of a share link, cached so that many screens polling cost almost nothing.

Every change that can alter a feed goes through an audited service (ingest, approval,
takedown, withdrawal, caption and alt-text edits, rotation, pinning: each adds an AuditEntry),
so a feed is rebuilt when ``max(AuditEntry.id)`` or the event's settings change, and at the
latest every ``max_age`` seconds as a safety net for changes made outside the services. The
check is one indexed query. A rebuild reuses the slides and their serialized JSON for rows
that did not change, so after one approval only that item is converted again. The control
part is always read fresh: "blank all screens" must not wait.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func
from sqlmodel import Session, select

from aggregator import i18n
from aggregator.errors import NotFound
from aggregator.models import AuditEntry, Campaign, Event, ShareLink, utcnow
from aggregator.services.events import active_share_link
from aggregator.services.slideshows import Slide, build_slides, feed_document, feed_item, upload_url
from aggregator.services.slideshows_control import control_state
from aggregator.services.slideshows_settings import effective_settings

DEFAULT_MAX_AGE: Final = 30.0
MAX_ENTRIES: Final = 500


@dataclass(frozen=True)
class FeedBody:
    """A feed's items part serialized once: ``head`` is the JSON object minus its closing brace."""

    version: str
    head: str


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
        return (self.body.head + "," + tail[1:]).encode()


@dataclass
class _Entry:
    fingerprint: tuple[Any, ...]
    built_at: float
    body: FeedBody
    memo: dict[tuple[Any, ...], Slide | None] = field(default_factory=dict)


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
            # Slides and their JSON stay valid while settings and language are the same.
            reuse = entry is not None and entry.fingerprint[1:] == current[1:]
            memo = entry.memo if entry is not None and reuse else {}
            body = build_body(
                session=session,
                event=event,
                link=link,
                lang=lang,
                public_base_url=public_base_url,
                memo=memo,
            )
            entry = _Entry(current, now, body, memo)
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:  # bounded: old links' entries go
                    self._entries.clear()
                self._entries[key] = entry
        return LiveFeed(link=link, event=event, body=entry.body, control=control_state(event))


def show_path(token: str) -> str:
    """URL path of a share link's display (relative to the site root)."""
    return f"/show/{token}"


def build_body(
    *,
    session: Session,
    event: Event,
    link: ShareLink,
    lang: str,
    public_base_url: str,
    memo: dict[tuple[Any, ...], Slide | None] | None = None,
) -> FeedBody:
    """Build and serialize the feed (without control) for one link and language."""
    base = show_path(link.token)
    campaign = session.get(Campaign, event.campaign_id)
    slides = build_slides(session=session, event=event, memo=memo)
    settings = effective_settings(event)
    gettext = i18n.translations(lang).gettext

    def image_url(slide: Slide, style: str) -> str:
        # The content hash in the URL: a rotated photo gets a new address, not a stale cache.
        url = f"{base}/img/{slide.id}?v={slide.sha256[:10]}"
        return url + "&s=thumb" if style == "thumb" else url

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
        image_url=image_url,
        gettext=gettext,
        qr=qr,
        logo_url=f"{base}/logo" if settings.get("logo") else None,
        with_version=False,
    )
    fragments = []
    digests = hashlib.blake2b(digest_size=8)
    for slide in slides:
        if slide.fragment is None:
            item = feed_item(slide, settings["captions"], image_url=image_url, gettext=gettext)
            slide.fragment = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            slide.digest = hashlib.blake2b(slide.fragment.encode(), digest_size=8).digest()
        fragments.append(slide.fragment)
        digests.update(slide.digest)
    # Serialized once, items from their cached fragments; the version covers the document
    # and, through their digests, every item in order.
    document.pop("items")
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    version = hashlib.blake2b(raw.encode() + digests.digest(), digest_size=8).hexdigest()
    raw = raw[:-1] + ',"items":[' + ",".join(fragments) + "]}"
    return FeedBody(
        version=version,
        head='{"version":"' + version + '",' + raw[1:-1],
    )
