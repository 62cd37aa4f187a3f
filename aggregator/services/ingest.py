"""The one ingest path: collected posts, participant uploads and bulk imports all become a
Submission with processed MediaAssets here.

Images are processed *before* this is called (the pipeline is CPU work that must not hold a
transaction); ``ingest`` only stores derivatives and rows. It is idempotent on
(source, external id), and a collector's cursor is saved in the same transaction as its items,
so a crash followed by a rerun converges with no duplicates. Files written before a crash that
no committed row refers to are removed by the periodic ``jobs.sweep_media``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.media import MediaLimits, ProcessedImage
from aggregator.media.dedup import near_duplicates
from aggregator.media.storage import Storage
from aggregator.models import (
    AuditEntry,
    Campaign,
    MediaAsset,
    Origin,
    Rule,
    Source,
    Submission,
    SubmissionStatus,
    utcnow,
)
from aggregator.services.rules import initial_decision
from aggregator.services.users import hash_token

MAX_IMAGES_PER_POST = 4
MAX_IMAGES_PER_UPLOAD = 10
# Near-duplicate search looks at this many most recent images of the campaign.
NEAR_DUPLICATE_WINDOW = 20_000


def media_limits(settings: Settings) -> MediaLimits:
    """The pipeline limits configured in ``settings``."""
    return MediaLimits(
        max_bytes=settings.upload_max_bytes,
        max_pixels=settings.upload_max_pixels,
        slide_size=(settings.slide_width, settings.slide_height),
    )


@dataclass(frozen=True)
class IncomingImage:
    """A processed image with the alt text its author gave."""

    image: ProcessedImage
    alt_text: str = ""


@dataclass(frozen=True)
class Incoming:
    """One post or upload ready to store (text already plain, HTML already sanitised)."""

    origin: Origin
    images: Sequence[IncomingImage]
    external_id: str | None = None
    remote_id: str | None = None
    url: str | None = None
    author_name: str = ""
    author_handle: str | None = None
    author_url: str | None = None
    city: str | None = None
    text: str = ""
    html: str | None = None
    language: str | None = None
    hashtags: Sequence[str] = ()
    consent: Sequence[str] = ()
    sensitive: bool = False
    content_warning: str | None = None
    posted_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ingested:
    """What ``ingest`` did: the submission, whether it is new, and a receipt token if asked."""

    submission: Submission
    created: bool
    receipt_token: str | None = None


def ingest(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    incoming: Incoming,
    source: Source | None = None,
    with_receipt: bool = False,
    near_distance: int = 8,
    commit: bool = True,
) -> Ingested:
    """Store one item (or return the existing one for the same source and external id)."""
    [result] = ingest_page(
        session=session,
        storage=storage,
        campaign=campaign,
        incomings=[incoming],
        source=source,
        with_receipt=with_receipt,
        near_distance=near_distance,
    )
    if commit:
        session.commit()
    return result


def ingest_page(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    incomings: Sequence[Incoming],
    source: Source | None = None,
    with_receipt: bool | Sequence[bool] = False,
    near_distance: int = 8,
) -> list[Ingested]:
    """Store several items in the caller's transaction (it commits), one result per item.

    Known items, the campaign's rules and recent image hashes are each read once per call,
    which is what lets a collector page of text-only posts go through at database speed.
    """
    receipts = (
        [with_receipt] * len(incomings) if isinstance(with_receipt, bool) else list(with_receipt)
    )
    existing: dict[str, Submission] = {}
    wanted = [i.external_id for i in incomings if i.external_id is not None]
    if source is not None and wanted:
        existing = {
            str(s.external_id): s
            for s in session.exec(
                select(Submission).where(
                    Submission.source_id == source.id, col(Submission.external_id).in_(wanted)
                )
            ).all()
        }
    rules = session.exec(select(Rule).where(Rule.campaign_id == campaign.id)).all()
    known: list[tuple[int, int, str]] | None = None
    results: list[Ingested] = []
    for incoming, receipt in zip(incomings, receipts, strict=True):
        found = existing.get(incoming.external_id or "") if source is not None else None
        if found is not None:
            _refresh_pending(found, incoming)
            results.append(Ingested(found, created=False))
            continue
        if incoming.images and known is None:
            known = _recent_hashes(session, campaign)
        result = _create(
            session, storage, campaign, source, incoming, receipt, rules, known or [], near_distance
        )
        if source is not None and incoming.external_id is not None:
            existing[incoming.external_id] = result.submission
        results.append(result)
    return results


def _create(
    session: Session,
    storage: Storage,
    campaign: Campaign,
    source: Source | None,
    incoming: Incoming,
    with_receipt: bool,
    rules: Sequence[Rule],
    known: list[tuple[int, int, str]],
    near_distance: int,
) -> Ingested:
    limit = MAX_IMAGES_PER_POST if incoming.origin == Origin.collected else MAX_IMAGES_PER_UPLOAD
    images = list(incoming.images)[:limit]
    token = secrets.token_urlsafe(24) if with_receipt else None
    submission = Submission(
        campaign_id=campaign.id,  # type: ignore[arg-type]
        source_id=source.id if source else None,
        origin=incoming.origin,
        external_id=incoming.external_id,
        remote_id=incoming.remote_id,
        url=incoming.url,
        author_name=incoming.author_name[:200],
        author_handle=incoming.author_handle,
        author_url=incoming.author_url,
        city=incoming.city,
        text=incoming.text,
        html=incoming.html,
        language=incoming.language,
        hashtags=list(incoming.hashtags),
        consent=list(incoming.consent),
        sensitive=incoming.sensitive,
        content_warning=incoming.content_warning,
        posted_at=incoming.posted_at or utcnow(),
        receipt_token_hash=hash_token(token) if token else None,
        extra=dict(incoming.extra),
    )
    session.add(submission)
    session.flush()
    flags: list[str] = ["sensitive"] if incoming.sensitive else []
    assets = []
    for position, item in enumerate(images):
        asset = _store_image(storage, submission, position, item)
        duplicate = _duplicate_of(asset, known, near_distance)
        if duplicate is not None:
            asset.duplicate_of_id = duplicate
            if "near_duplicate" not in flags:
                flags.append("near_duplicate")
        session.add(asset)
        assets.append(asset)
    if assets:
        session.flush()  # ids, so later items of the same page can point at these
        known[:0] = [(a.id, a.phash, a.sha256) for a in assets if a.id is not None]
    status, rule_flags = initial_decision(
        session=session, campaign=campaign, source=source, submission=submission, rules=rules
    )
    submission.flags = flags + [f for f in rule_flags if f not in flags]
    submission.status = status
    session.add(
        AuditEntry(
            submission_id=submission.id,
            actor_label="system",
            action="ingest",
            to_status=status.value,
            reason=", ".join(submission.flags),
            detail={"origin": incoming.origin.value, "images": len(images)},
        )
    )
    return Ingested(submission, created=True, receipt_token=token)


def _refresh_pending(existing: Submission, incoming: Incoming) -> None:
    # An edited post updates what moderators will read, but never an item already decided.
    if existing.status == SubmissionStatus.pending:
        existing.text = incoming.text
        existing.html = incoming.html
        existing.sensitive = existing.sensitive or incoming.sensitive
        existing.content_warning = incoming.content_warning or existing.content_warning


def _store_image(
    storage: Storage, submission: Submission, position: int, item: IncomingImage
) -> MediaAsset:
    image = item.image
    keys = {
        style: storage.put(derivative.data, suffix=_suffix(derivative.content_type))
        for style, derivative in image.derivatives.items()
    }
    return MediaAsset(
        submission_id=submission.id,  # type: ignore[arg-type]
        position=position,
        sha256=image.sha256,
        phash=image.phash,
        width=image.width,
        height=image.height,
        color=image.color,
        source_format=image.source_format,
        alt_text=item.alt_text[:1500],
        keys=keys,
        slide_bytes=len(image.derivatives["slide"].data),
    )


def _suffix(content_type: str) -> str:
    return {"image/jpeg": ".jpg", "image/webp": ".webp", "image/png": ".png"}.get(
        content_type, ".bin"
    )


def _recent_hashes(session: Session, campaign: Campaign) -> list[tuple[int, int, str]]:
    rows = session.exec(
        select(MediaAsset.id, MediaAsset.phash, MediaAsset.sha256)
        .join(Submission, col(Submission.id) == col(MediaAsset.submission_id))
        .where(Submission.campaign_id == campaign.id)
        .order_by(col(MediaAsset.id).desc())
        .limit(NEAR_DUPLICATE_WINDOW)
    ).all()
    return [(int(i), int(p), str(s)) for i, p, s in rows if i is not None]


def _duplicate_of(
    asset: MediaAsset, known: list[tuple[int, int, str]], max_distance: int
) -> int | None:
    for asset_id, _phash, sha in known:
        if sha == asset.sha256:
            return asset_id
    matches = near_duplicates(
        asset.phash, ((i, p) for i, p, _s in known), max_distance=max_distance
    )
    return matches[0] if matches else None
