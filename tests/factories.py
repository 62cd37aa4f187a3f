"""Plain factory functions for tests: each adds, commits and returns one row."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path
from typing import Any

from PIL import Image
from sqlmodel import Session

from aggregator.media.storage import LocalStorage
from aggregator.models import (
    Campaign,
    Event,
    MediaAsset,
    Role,
    ShareLink,
    Source,
    Submission,
    SubmissionStatus,
    User,
)
from aggregator.services.users import hash_password

_counter = itertools.count(1)

PASSWORD = "correct horse battery"


def make_campaign(session: Session, **kw: Any) -> Campaign:
    """A campaign with a unique slug."""
    n = next(_counter)
    values: dict[str, Any] = {
        "slug": f"campaign-{n}",
        "name": f"Campaign {n}",
        "hashtags": ["weremember"],
        **kw,
    }
    return _save(session, Campaign(**values))


def make_source(session: Session, campaign: Campaign, **kw: Any) -> Source:
    """A Mastodon source unless told otherwise."""
    values: dict[str, Any] = {
        "campaign_id": campaign.id,
        "kind": "mastodon",
        "config": {"url": "https://mastodon.example", "hashtags": ["weremember"]},
        **kw,
    }
    return _save(session, Source(**values))


def make_user(session: Session, role: Role = Role.moderator, **kw: Any) -> User:
    """An active account with password ``PASSWORD``."""
    n = next(_counter)
    values: dict[str, Any] = {
        "email": f"user{n}@example.org",
        "role": role,
        "password_hash": hash_password(PASSWORD),
        **kw,
    }
    return _save(session, User(**values))


def make_submission(
    session: Session,
    campaign: Campaign,
    *,
    status: SubmissionStatus = SubmissionStatus.pending,
    media: int = 1,
    **kw: Any,
) -> Submission:
    """A submission with ``media`` placeholder assets (no files behind them)."""
    n = next(_counter)
    values: dict[str, Any] = {
        "campaign_id": campaign.id,
        "external_id": f"ext-{n}",
        "author_name": f"Author {n}",
        "text": f"We remember #{n}",
        "status": status,
        "consent": ["projection", "web", "archive"],
        **kw,
    }
    submission = _save(session, Submission(**values))
    for position in range(media):
        session.add(
            MediaAsset(
                submission_id=submission.id,  # type: ignore[arg-type]
                position=position,
                sha256=f"{n:060d}{position:04d}",
                phash=n * 7919 + position,
                width=1600,
                height=1200,
                keys={"slide": _placeholder_key(n, position)},
            )
        )
    session.commit()
    return submission


def _placeholder_key(n: int, position: int) -> str:
    """A well-formed storage key with no file behind it."""
    digest = hashlib.sha256(f"{n}-{position}".encode()).hexdigest()
    return f"{digest[:2]}/{digest[2:32]}.jpg"


def make_event(session: Session, campaign: Campaign, **kw: Any) -> tuple[Event, ShareLink]:
    """An event with one share link."""
    from aggregator.services.events import create_event

    return create_event(session=session, campaign=campaign, name=kw.pop("name", "Evening"), **kw)


def jpeg_bytes(
    width: int = 640, height: int = 480, color: tuple[int, int, int] = (120, 90, 60)
) -> bytes:
    """A small valid JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _save(session: Session, row: Any) -> Any:
    session.add(row)
    session.commit()
    session.refresh(row)
    # End the read the refresh began: an open SQLite read snapshot would block the app's writes.
    session.commit()
    return row


class DiskFullAfter(LocalStorage):
    """A storage whose disk fills up after ``budget`` files: the crash in the middle."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def put(self, data: bytes, *, suffix: str) -> str:
        if self.budget <= 0:
            raise OSError(28, "No space left on device")
        self.budget -= 1
        return super().put(data, suffix=suffix)
