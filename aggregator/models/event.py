"""Events (a projection at a commemoration), their share links, screens and exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from aggregator.models.base import UTCDateTime, empty_dict, utcnow


class Event(SQLModel, table=True):
    """A commemorative event showing one campaign's approved photos."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Slideshow settings (interval, order, transition, captions, intro/closing slides,
    # silence, QR slide, theme, language, filters); defaults in services/slideshows.py.
    settings: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    # Live control state set by the host (blank, paused, silence, command counter).
    control: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventHost(SQLModel, table=True):
    """Gives a host account access to one event."""

    __table_args__ = (UniqueConstraint("event_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")


class ShareLink(SQLModel, table=True):
    """A revocable, expiring link to an event's live display.

    The token is kept in clear (unlike receipts) because hosts must be able to copy the link
    again from the event page; it opens nothing but the display it was made for.
    """

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True, ondelete="CASCADE")
    token: str = Field(unique=True, max_length=64)
    layout: str = Field(default="slideshow", max_length=20)  # slideshow | wall
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Screen(SQLModel, table=True):
    """A display that opened a share link, with its last heartbeat."""

    __table_args__ = (UniqueConstraint("share_link_id", "screen_key"),)

    id: int | None = Field(default=None, primary_key=True)
    share_link_id: int = Field(foreign_key="sharelink.id", index=True, ondelete="CASCADE")
    screen_key: str = Field(max_length=64)
    label: str = Field(default="", max_length=200)
    showing: str | None = Field(default=None, max_length=64)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExportJob(SQLModel, table=True):
    """One export run started from the event page (progress shown to the host)."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True, ondelete="CASCADE")
    format: str = Field(max_length=20)
    status: str = Field(default="queued", max_length=20)  # queued|running|done|failed
    progress: float = 0.0
    storage_key: str | None = Field(default=None, max_length=300)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
