"""Accounts, server-side login sessions and the append-only audit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from aggregator.models.base import UTCDateTime, empty_dict, utcnow


class Role(StrEnum):
    """What an account may do; admin ⊃ moderator, hosts see only their events."""

    admin = "admin"
    moderator = "moderator"
    host = "host"


class User(SQLModel, table=True):
    """A moderator, host or admin account."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=320)
    display_name: str = Field(default="", max_length=200)
    # Argon2id hash; None until an invitation is accepted.
    password_hash: str | None = None
    role: Role = Field(max_length=20)
    active: bool = True
    invite_token_hash: str | None = Field(default=None, unique=True, max_length=64)
    invite_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginSession(SQLModel, table=True):
    """A server-side session; the cookie holds only the random token, stored here hashed."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """One recorded action. Rows are only ever added (privacy requests redact, never delete)."""

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int | None = Field(
        default=None, foreign_key="submission.id", index=True, ondelete="SET NULL"
    )
    actor_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    # Who acted when there is no account: "participant", "system", "cli", "upstream".
    actor_label: str = Field(default="", max_length=100)
    action: str = Field(max_length=50)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class RateCounter(SQLModel, table=True):
    """A sliding-window counter shared by every worker (uploads per IP, logins per IP):
    attempts in the current fixed window, and in the one before it."""

    key: str = Field(primary_key=True, max_length=200)
    window_start: datetime = Field(sa_type=UTCDateTime)
    count: int = 0
    previous: int = 0
