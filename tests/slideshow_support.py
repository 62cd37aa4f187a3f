"""Helpers for the slideshow, host and export tests: real photos through the real pipeline."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from aggregator.media import process_image
from aggregator.media.storage import Storage
from aggregator.models import Campaign, Origin, Submission, SubmissionStatus
from aggregator.services.ingest import Incoming, IncomingImage, ingest
from aggregator.services.moderation import transition
from tests.factories import jpeg_bytes

_colors = itertools.count(1)


def photo(
    session: Session,
    storage: Storage,
    campaign: Campaign,
    *,
    approve: bool = True,
    consent: Sequence[str] = ("projection", "web", "archive"),
    images: int = 1,
    size: tuple[int, int] = (800, 600),
    data: bytes | None = None,
    alt: str = "",
    posted_at: datetime | None = None,
    **fields: Any,
) -> Submission:
    """Ingest a participant upload through the real pipeline, approved unless told not:
    ``images`` distinct JPEGs of ``size``, or the one photo ``data``; each with ``alt``."""
    processed = []
    for _ in range(images):
        n = next(_colors)
        color = (40 + (n * 37) % 200, 30 + (n * 71) % 200, 20 + (n * 13) % 200)
        image = process_image(data or jpeg_bytes(*size, color=color))
        processed.append(IncomingImage(image, alt_text=alt))
    values: dict[str, Any] = {"author_name": "Anna", "city": "Almaty", "text": "We remember."}
    values.update(fields)
    result = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=Incoming(
            origin=Origin.upload,
            images=processed,
            consent=list(consent),
            posted_at=posted_at,
            **values,
        ),
    )
    submission = result.submission
    if approve and submission.status != SubmissionStatus.approved:
        submission = transition(
            session=session,
            submission_id=submission.id,  # type: ignore[arg-type]
            to=SubmissionStatus.approved,
            actor_label="test",
        )
    return submission


def take_down(session: Session, submission: Submission) -> None:
    """Remove an approved submission the way moderators do."""
    transition(
        session=session,
        submission_id=submission.id,  # type: ignore[arg-type]
        to=SubmissionStatus.removed,
        actor_label="test",
        reason="takedown",
    )
