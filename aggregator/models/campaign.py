"""Campaigns, the sources that feed them, and moderation rules."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from aggregator.models.base import UTCDateTime, empty_dict, empty_list, utcnow

# Consent scopes a participant can give, in the order shown; the first is required to take part.
CONSENT_SCOPES = ("projection", "web", "archive")


class ModerationMode(StrEnum):
    """How new submissions of a campaign start out."""

    manual = "manual"  # every item waits for a moderator
    auto_trusted = "auto_trusted"  # items from trusted authors/sources are approved at once


class Campaign(SQLModel, table=True):
    """One remembrance campaign: its texts, hashtags, consent wording and upload window."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    description: str = ""
    # The text people write on their sign, e.g. "We Remember".
    sign_text: str = Field(default="We Remember", max_length=200)
    # Per-language overrides: {"ru": {"name": ..., "description": ..., "sign_text": ...,
    # "consent": {"projection": ..., "web": ..., "archive": ...}}, ...}.
    translations: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    hashtags: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    languages: list[str] = Field(default_factory=lambda: ["en", "ru", "kk"], sa_type=JSON)
    # Consent wording per scope in the default language; translations override it.
    consent_texts: dict[str, str] = Field(default_factory=empty_dict, sa_type=JSON)
    upload_opens_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    upload_closes_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    moderation_mode: ModerationMode = Field(default=ModerationMode.manual, max_length=20)
    # Flagged items (rule hit, sensitive, near duplicate) need two approvals.
    require_second_approval: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Source(SQLModel, table=True):
    """A configured collector for one campaign, with its cursor and health."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=20)  # mastodon | bluesky | rss | telegram
    name: str = Field(default="", max_length=200)
    config: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    interval_seconds: int = 300
    enabled: bool = True
    cursor: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    consecutive_failures: int = 0
    items_collected: int = 0
    # Backoff after failures or a remote's rate limit: no collection before this time.
    next_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RuleKind(StrEnum):
    """What a moderation rule matches."""

    trusted_author = "trusted_author"
    trusted_source = "trusted_source"
    blocked_author = "blocked_author"
    blocked_instance = "blocked_instance"
    blocked_word = "blocked_word"


class Rule(SQLModel, table=True):
    """A per-campaign moderation rule."""

    __table_args__ = (UniqueConstraint("campaign_id", "kind", "value"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    kind: RuleKind = Field(max_length=30)
    value: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
