"""Submissions (one post or upload) and their images."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from aggregator.models.base import UTCDateTime, empty_dict, empty_list, new_public_id, utcnow


class SubmissionStatus(StrEnum):
    """Moderation states; transitions live in services/moderation.py."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    removed = "removed"  # taken down by a moderator after approval
    withdrawn = "withdrawn"  # by the participant, or deleted upstream


class Origin(StrEnum):
    """How a submission reached us."""

    collected = "collected"
    upload = "upload"
    import_ = "import"


class Submission(SQLModel, table=True):
    """One collected post or participant upload, as moderators see it."""

    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_submission_queue", "campaign_id", "status", "id"),
        # The moderation queue across all campaigns (keyset on id within one status).
        Index("ix_submission_status_id", "status", "id"),
        # Public gallery, API and feed: newest first with a (posted_at, public_id) keyset.
        Index("ix_submission_public", "campaign_id", "status", "posted_at", "public_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=new_public_id, unique=True, max_length=32)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    source_id: int | None = Field(
        default=None, foreign_key="source.id", index=True, ondelete="SET NULL"
    )
    origin: Origin = Field(default=Origin.collected, max_length=20)
    external_id: str | None = Field(default=None, max_length=500)
    # The id the source platform uses for API look-ups (may differ from external_id).
    remote_id: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    author_name: str = Field(default="", max_length=200)
    author_handle: str | None = Field(default=None, max_length=300)
    author_url: str | None = Field(default=None, max_length=2000)
    city: str | None = Field(default=None, max_length=200)
    text: str = ""
    # Sanitised HTML of collected posts (nh3), or None.
    html: str | None = None
    language: str | None = Field(default=None, max_length=20)
    hashtags: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    consent: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    status: SubmissionStatus = Field(default=SubmissionStatus.pending, max_length=20)
    sensitive: bool = False
    content_warning: str | None = None
    # Why moderators should look twice: ["near_duplicate", "sensitive", "rule:<word>"].
    flags: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    # Approvals so far (a second one is needed for flagged items when the campaign asks).
    approvals: list[int] = Field(default_factory=empty_list, sa_type=JSON)
    # The first of two approvals (that moderator may not give the second one).
    first_approved_by_id: int | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL"
    )
    receipt_token_hash: str | None = Field(default=None, unique=True, max_length=64)
    pinned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    posted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    extra: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)


class MediaAsset(SQLModel, table=True):
    """One processed image of a submission; only derivatives are stored, never the original."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True, ondelete="CASCADE")
    position: int = 0
    sha256: str = Field(max_length=64, index=True)
    # 64-bit perceptual hash, stored signed so it fits BIGINT everywhere.
    phash: int = Field(sa_column=Column(BigInteger, nullable=False))
    width: int
    height: int
    color: str = Field(default="#444444", max_length=7)
    source_format: str = Field(default="", max_length=10)
    alt_text: str = ""
    # Storage keys of the derivatives by style name: {"slide": ..., "thumb": ...}.
    keys: dict[str, str] = Field(default_factory=empty_dict, sa_type=JSON)
    slide_bytes: int = 0
    duplicate_of_id: int | None = Field(
        default=None, foreign_key="mediaasset.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StagedPhoto(SQLModel, table=True):
    """A participant's photo processed and stored while the form is still being filled in.

    The upload page sends each photo on its own (per-file progress and retry); the form then
    refers to the staged photos by ``token``. Bound to the browser's CSRF cookie (``owner_hash``)
    so nobody else can attach it; rows past ``expires_at`` are swept with their files.
    """

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(unique=True, max_length=64)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    owner_hash: str = Field(max_length=64, index=True)
    # {"slide": {"key", "width", "height", "content_type"}, "thumb": {...}}
    derivatives: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    sha256: str = Field(max_length=64)
    phash: int = Field(sa_column=Column(BigInteger, nullable=False))
    width: int
    height: int
    color: str = Field(default="#444444", max_length=7)
    source_format: str = Field(default="", max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
