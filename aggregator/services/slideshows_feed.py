"""The live feed of a share link, cached briefly so many screens cost one query per event.

A display polls ``feed.json`` or holds an SSE connection that checks the version every few
seconds; without a cache each of them would rebuild the same document. ``FeedCache`` keeps
the serialized items part per (share link, language) for ``ttl`` seconds (so a new approval
or a takedown reaches every screen within ``ttl`` + one check), and the control part is always
read fresh because "blank all screens" must not wait.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlmodel import Session

from aggregator import i18n
from aggregator.errors import NotFound
from aggregator.models import Campaign, Event, ShareLink, utcnow
from aggregator.services.events import active_share_link
from aggregator.services.slideshows import Slide, build_slides, feed_document
from aggregator.services.slideshows_control import control_state
from aggregator.services.slideshows_settings import effective_settings

DEFAULT_TTL: Final = 2.0


@dataclass(frozen=True)
class FeedBody:
    """A feed's items part serialized once: ``head`` is the JSON object minus its closing brace."""

    version: str
    head: str
    item_ids: frozenset[str]


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


def display_language(event: Event, requested: str, enabled: tuple[str, ...]) -> str:
    """The event's on-screen language when set and enabled, else the visitor's."""
    chosen = effective_settings(event).get("language")
    return chosen if chosen in enabled else requested


class FeedCache:
    """Per-process cache of serialized feed bodies; safe to share between threads."""

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], tuple[float, FeedBody]] = {}

    def clear(self) -> None:
        """Forget everything (after settings change, so the host sees the effect at once)."""
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
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(key)
        if cached is None or now - cached[0] > self.ttl:
            body = build_body(
                session=session,
                event=event,
                link=link,
                lang=lang,
                public_base_url=public_base_url,
            )
            with self._lock:
                if len(self._entries) > 500:  # bounded: old links' entries go
                    self._entries.clear()
                self._entries[key] = (now, body)
        else:
            body = cached[1]
        return LiveFeed(link=link, event=event, body=body, control=control_state(event))


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
) -> FeedBody:
    """Build and serialize the items part of the feed for one link and language."""
    base = show_path(link.token)
    campaign = session.get(Campaign, event.campaign_id)
    slides = build_slides(session=session, event=event)
    settings = effective_settings(event)
    translations = i18n.translations(lang)

    def image_url(slide: Slide, style: str) -> str:
        return f"{base}/img/{slide.id}" + ("?s=thumb" if style == "thumb" else "")

    qr = None
    if campaign is not None:
        qr = {
            "url": f"{public_base_url.rstrip('/')}/c/{campaign.slug}",
            "image": f"{base}/qr.svg",
            "text": translations.gettext("Add your photo"),
        }
    document = feed_document(
        event=event,
        campaign=campaign,
        slides=slides,
        lang=lang,
        direction=i18n.direction(lang),
        image_url=image_url,
        gettext=translations.gettext,
        qr=qr,
        logo_url=f"{base}/logo" if settings.get("logo") else None,
    )
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return FeedBody(
        version=document["version"],
        head=raw[:-1],
        item_ids=frozenset(s.id for s in slides),
    )
