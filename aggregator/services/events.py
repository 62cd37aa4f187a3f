"""Events and their share links."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from aggregator.errors import InvalidInput, NotFound
from aggregator.models import Campaign, Event, ShareLink, utcnow

DEFAULT_EVENT_SETTINGS: dict[str, Any] = {
    "interval": 8,
    "order": "newest_replay",  # chronological | newest_replay | shuffled
    "transition": "crossfade",  # crossfade | none
    "captions": ["name", "city", "message"],
    "theme": "dark",
    "qr_every": 0,
    "intro": {"title": "", "text": ""},
    "closing": {"title": "", "text": ""},
    "silence_seconds": 60,
    "language": None,
    "filters": {},
}


def create_event(
    *,
    session: Session,
    campaign: Campaign,
    name: str,
    starts_at: datetime | None = None,
    interval: int | None = None,
) -> tuple[Event, ShareLink]:
    """Create an event with default slideshow settings and its first share link."""
    if not name.strip():
        raise InvalidInput("The event needs a name.", field="name")
    settings = dict(DEFAULT_EVENT_SETTINGS)
    if interval is not None:
        if not 3 <= interval <= 600:
            raise InvalidInput("The interval must be 3–600 seconds.", field="interval")
        settings["interval"] = interval
    event = Event(
        campaign_id=campaign.id,  # type: ignore[arg-type]
        name=name.strip(),
        starts_at=starts_at,
        settings=settings,
    )
    session.add(event)
    session.flush()
    link = ShareLink(event_id=event.id, token=new_share_token())  # type: ignore[arg-type]
    session.add(link)
    session.commit()
    session.refresh(event)
    session.refresh(link)
    return event, link


def new_share_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def active_share_link(*, session: Session, token: str) -> ShareLink:
    """The share link for ``token`` if not revoked or expired, else NotFound."""
    link = session.exec(select(ShareLink).where(ShareLink.token == token)).first()
    now = utcnow()
    if (
        link is None
        or link.revoked_at is not None
        or (link.expires_at is not None and link.expires_at <= now)
    ):
        raise NotFound("This display link does not exist or has been withdrawn.")
    return link


def share_url(base_url: str, link: ShareLink) -> str:
    """The absolute URL of a share link's display."""
    return f"{base_url.rstrip('/')}/show/{link.token}"
