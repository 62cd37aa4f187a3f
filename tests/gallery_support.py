"""Helpers for the gallery, read API, feed and privacy tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlmodel import Session

from aggregator.media.storage import Storage
from aggregator.models import Campaign, Submission, SubmissionStatus
from tests.factories import make_submission
from tests.slideshow_support import photo

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
    alt: str = "A woman holds a sign that says We Remember.",
    **kw: Any,
) -> Submission:
    """A participant upload through the real pipeline and ingest, approved unless told not,
    with a described photo (the gallery shows alt text)."""
    return photo(session, storage, campaign, alt=alt, **kw)


def json_keys(value: Any) -> Iterator[str]:
    """Every object key in a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from json_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from json_keys(inner)
