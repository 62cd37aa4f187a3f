"""The live feed of a share link, cached so that many screens polling cost almost nothing.

Every change that can alter a feed goes through an audited service (ingest, approval,
takedown, withdrawal, caption and alt-text edits, rotation, pinning: each adds an AuditEntry),
so a feed is rebuilt when ``max(AuditEntry.id)`` or the event's settings change, and fully
at least every ``max_age`` seconds as a safety net for changes made outside the services. The
check is one indexed query. A rebuild requeries only the submissions audited since the last
one and reuses every other slide with its serialized JSON, so after one approval only that
item is read and converted. The control part is always read fresh: "blank all screens" must
not wait.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func
from sqlmodel import Session, col, select

from aggregator import i18n
from aggregator.errors import NotFound
from aggregator.models import AuditEntry, Campaign, Event, ShareLink, utcnow
from aggregator.services.events import active_share_link
from aggregator.services.slideshows import Slide, arrange, build_slides, query_slides
from aggregator.services.slideshows_control import control_state
from aggregator.services.slideshows_document import feed_document, feed_item, upload_url
from aggregator.services.slideshows_settings import effective_settings

DEFAULT_MAX_AGE: Final = 30.0
MAX_ENTRIES: Final = 500
# More changed submissions than this since the last build: query everything again.
MAX_INCREMENTAL: Final = 200


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
    built_at: float  # of the last full query
    body: FeedBody
    memo: dict[tuple[Any, ...], Slide | None] = field(default_factory=dict)
    by_submission: dict[int, list[Slide]] = field(default_factory=dict)


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
        # Slides and their JSON stay valid while settings and language are the same.
        same_settings = entry is not None and entry.fingerprint[1:] == current[1:]
        changed: list[int] | None = None
        if entry is not None and same_settings and now - entry.built_at <= self.max_age:
            changed = changed_submissions(session, entry.fingerprint[0], current[0])
        if entry is not None and changed is not None:
            by_submission = dict(entry.by_submission)  # the old entry may still be read
            for submission_id in changed:
                by_submission.pop(submission_id, None)
            for slide in query_slides(session=session, event=event, submission_ids=changed):
                by_submission.setdefault(slide.submission_id, []).append(slide)
            built_at, memo = entry.built_at, entry.memo
        else:
            memo = entry.memo if entry is not None and same_settings else {}
            by_submission = {}
            for slide in query_slides(session=session, event=event, memo=memo):
                by_submission.setdefault(slide.submission_id, []).append(slide)
            built_at = now
        slides = arrange(
            [s for group in by_submission.values() for s in group],
            effective_settings(event)["order"],
            event.id or 0,
        )
        body = build_body(
            session=session,
            event=event,
            link=link,
            lang=lang,
            public_base_url=public_base_url,
            slides=slides,
        )
        return _Entry(current, built_at, body, memo, by_submission)


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


def build_body(
    *,
    session: Session,
    event: Event,
    link: ShareLink,
    lang: str,
    public_base_url: str,
    slides: list[Slide] | None = None,
) -> FeedBody:
    """Serialize the feed (without control) of ``slides`` (default: the event's, queried)
    for one link and language; slides keep their JSON for the next build."""
    base = show_path(link.token)
    campaign = session.get(Campaign, event.campaign_id)
    if slides is None:
        slides = build_slides(session=session, event=event)
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
