"""Helpers for the gallery, read API, feed and privacy tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from aggregator.media import process_image
from aggregator.media.storage import Storage
from aggregator.models import Campaign, Origin, Submission, SubmissionStatus
from aggregator.services.ingest import Incoming, IncomingImage, ingest
from aggregator.services.moderation import transition
from tests.factories import jpeg_bytes, make_submission

_shade = itertools.count(1)

# Every key the public JSON may carry, at any depth (security.md S3: an allowlist).
PUBLIC_ITEM_KEYS = {
    "items",
    "next_cursor",
    "next",
    "id",
    "url",
    "caption",
    "author",
    "city",
    "language",
    "created",
    "source",
    "images",
    "kind",
    "alt",
    "color",
    "slide",
    "thumb",
    "width",
    "height",
}
PUBLIC_CAMPAIGN_KEYS = {
    "campaigns",
    "slug",
    "name",
    "description",
    "sign_text",
    "hashtags",
    "languages",
    "translations",
    "links",
    "page",
    "gallery",
    "items",
    "feed",
    "embed",
    "en",
    "ru",
    "kk",
    "he",
}


def approved(
    session: Session,
    campaign: Campaign,
    *,
    consent: Sequence[str] = ("projection", "web", "archive"),
    **kw: Any,
) -> Submission:
    """A placeholder-image submission approved for display (no files behind it)."""
    return make_submission(
        session, campaign, status=SubmissionStatus.approved, consent=list(consent), **kw
    )


def real_photo(
    session: Session,
    storage: Storage,
    campaign: Campaign,
    *,
    approve: bool = True,
    consent: Sequence[str] = ("projection", "web", "archive"),
    data: bytes | None = None,
    alt: str = "A woman holds a sign that says We Remember.",
    posted_at: datetime | None = None,
    **fields: Any,
) -> Submission:
    """A participant upload through the real pipeline and ingest, approved unless told not."""
    n = next(_shade)
    color = (60 + (n * 37) % 160, 50 + (n * 71) % 160, 40 + (n * 13) % 160)
    image = process_image(data or jpeg_bytes(800, 600, color=color))
    values: dict[str, Any] = {"author_name": "Anna", "city": "Almaty", "text": "We remember."}
    values.update(fields)
    result = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=Incoming(
            origin=Origin.upload,
            images=[IncomingImage(image, alt_text=alt)],
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


def json_keys(value: Any) -> Iterator[str]:
    """Every object key in a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from json_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from json_keys(inner)
