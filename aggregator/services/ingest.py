"""The one ingest path: collected posts, participant uploads and bulk imports all become a
Submission with processed MediaAssets here.

Images are processed *before* this is called (the pipeline is CPU work that must not hold a
transaction); ``ingest`` only stores derivatives and rows. It is idempotent on
(source, external id), and a collector's cursor is saved in the same transaction as its items,
so a crash followed by a rerun converges with no duplicates. Files written before a crash that
no committed row refers to are removed by the periodic ``jobs.sweep_media``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import insert
from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, SQLModel, col, select

from aggregator.config import Settings
from aggregator.media import MediaLimits, ProcessedImage
from aggregator.media.storage import Storage, suffix_for
from aggregator.models import (
    AuditEntry,
    Campaign,
    MediaAsset,
    Origin,
    Source,
    Submission,
    SubmissionStatus,
    utcnow,
)
from aggregator.services.recent_hashes import PageHashes, existing, forget, recent_hashes
from aggregator.services.rules import campaign_rules
from aggregator.services.users import hash_token

MAX_IMAGES_PER_POST = 4
MAX_IMAGES_PER_UPLOAD = 10


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

    Idempotent on (source, external id): an item the source already has (or that comes
    earlier in the same page) is not stored again; while it is still pending, its text is
    refreshed from the newer copy. Each new item gets its rules decision, its images (with
    duplicate flags) and one ``ingest`` audit entry.

    The work is done page-wise, so a collector page of text-only posts costs a handful of
    statements whatever its size: one SELECT of the page's known ids, one of the campaign's
    rules, one multi-row INSERT … RETURNING of the new submissions and one of their audit
    entries. Items with images add their own asset INSERT (and one read of recent hashes).
    """
    receipts = (
        [with_receipt] * len(incomings) if isinstance(with_receipt, bool) else list(with_receipt)
    )
    if len(receipts) != len(incomings):
        raise ValueError("with_receipt needs one flag per item")
    existing = _known(session, source, incomings)
    done: dict[int, Ingested] = {}
    new: list[int] = []
    repeats: list[tuple[int, int]] = []  # (item, earlier item of this page that creates it)
    creating: dict[str, int] = {}
    for index, incoming in enumerate(incomings):
        key = incoming.external_id if source is not None else None
        if key is None:
            new.append(index)
        elif (found := existing.get(key)) is not None:
            _refresh_pending(found, incoming)
            done[index] = Ingested(found, created=False)
        elif key in creating:
            repeats.append((index, creating[key]))
        else:
            creating[key] = index
            new.append(index)
    created = _create_all(
        session,
        storage,
        campaign,
        source,
        [(incomings[index], receipts[index]) for index in new],
        near_distance,
    )
    done.update(zip(new, created, strict=True))
    for index, first in repeats:
        # The same post twice in one page: the later copy is what an edit would look like.
        submission = done[first].submission
        _refresh_pending(submission, incomings[index])
        done[index] = Ingested(submission, created=False)
    return [done[index] for index in range(len(incomings))]


def _known(
    session: Session, source: Source | None, incomings: Sequence[Incoming]
) -> dict[str, Submission]:
    """The source's submissions for the page's external ids, by external id (one query)."""
    wanted = sorted({i.external_id for i in incomings if i.external_id is not None})
    if source is None or not wanted:
        return {}
    rows = session.exec(
        select(Submission).where(
            Submission.source_id == source.id, col(Submission.external_id).in_(wanted)
        )
    ).all()
    return {str(s.external_id): s for s in rows}


def _create_all(
    session: Session,
    storage: Storage,
    campaign: Campaign,
    source: Source | None,
    items: Sequence[tuple[Incoming, bool]],
    near_distance: int,
) -> list[Ingested]:
    """Insert new items (rows in one statement), then their images, then their audit entries.

    Images are stored after the submission rows exist (assets refer to them); a duplicate
    found among them only adds the ``near_duplicate`` flag, it never changes the status.
    """
    if not items:
        return []
    rules = campaign_rules(session, campaign)
    tokens = [secrets.token_urlsafe(24) if receipt else None for _incoming, receipt in items]
    decisions = [rules.decide(campaign, source, incoming) for incoming, _receipt in items]
    rows = [
        _submission_row(campaign, source, incoming, token, status, _flags(incoming, False, hits))
        for (incoming, _receipt), token, (status, hits) in zip(
            items, tokens, decisions, strict=True
        )
    ]
    submissions = _insert_submissions(session, rows)
    known: PageHashes | None = None
    audits = []
    for submission, (incoming, _receipt), (status, hits) in zip(
        submissions, items, decisions, strict=True
    ):
        stored = 0
        if incoming.images:
            known = recent_hashes(session, campaign) if known is None else known
            stored, near = _store_images(
                session, storage, campaign, submission, incoming, known, near_distance
            )
            if near:
                submission.flags = _flags(incoming, True, hits)
        audits.append(_audit_row(submission, incoming, status, stored))
    session.execute(insert(AuditEntry), audits)
    return [
        Ingested(submission, created=True, receipt_token=token)
        for submission, token in zip(submissions, tokens, strict=True)
    ]


def _insert_submissions(session: Session, rows: Sequence[dict[str, Any]]) -> list[Submission]:
    """Insert ``rows`` in one multi-row INSERT … RETURNING; the new objects, in row order.

    The objects come back persistent in the session, so later changes (a refreshed text, a
    duplicate flag) are flushed like any other. RETURNING may give them in any order (asking
    SQLAlchemy for parameter order makes it insert row by row on SQLite), so they are matched
    to their rows by public id, which every row has and which is unique.
    """
    inserted = session.scalars(insert(Submission).returning(Submission), rows).all()
    by_public_id = {submission.public_id: submission for submission in inserted}
    return [by_public_id[row["public_id"]] for row in rows]


def _flags(incoming: Incoming, near_duplicate: bool, rule_flags: Sequence[str]) -> list[str]:
    """Why moderators should look twice, in the order they read them."""
    flags = ["sensitive"] if incoming.sensitive else []
    if near_duplicate:
        flags.append("near_duplicate")
    return flags + [f for f in rule_flags if f not in flags]


def _submission_row(
    campaign: Campaign,
    source: Source | None,
    incoming: Incoming,
    token: str | None,
    status: SubmissionStatus,
    flags: list[str],
) -> dict[str, Any]:
    return _with_defaults(
        Submission,
        campaign_id=campaign.id,
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
        status=status,
        sensitive=incoming.sensitive,
        content_warning=incoming.content_warning,
        flags=flags,
        posted_at=incoming.posted_at or utcnow(),
        receipt_token_hash=hash_token(token) if token else None,
        extra=dict(incoming.extra),
    )


def _audit_row(
    submission: Submission, incoming: Incoming, status: SubmissionStatus, images: int
) -> dict[str, Any]:
    return _with_defaults(
        AuditEntry,
        submission_id=submission.id,
        actor_label="system",
        action="ingest",
        to_status=status.value,
        reason=", ".join(submission.flags),
        detail={"origin": incoming.origin.value, "images": images},
    )


def _with_defaults(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A full row for a bulk INSERT: ``values`` plus the model's field defaults.

    Constructing the model would apply its defaults (public id, timestamps, empty lists) but
    costs more than the INSERT itself; a bulk INSERT skips construction, so the defaults are
    taken from the model's own field definitions here, never repeated by hand. Every row of a
    model gets the same keys, so the rows go out as one executemany batch.
    """
    row = dict(values)
    for name, default in _field_defaults(model):
        if name not in row:
            row[name] = default() if callable(default) else default
    return row


@functools.cache
def _field_defaults(model: type[SQLModel]) -> tuple[tuple[str, Any], ...]:
    """(field, constant or factory) for each field with a default, except a None primary key."""
    defaults: list[tuple[str, Any]] = []
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            defaults.append((name, info.default_factory))
        elif info.default is not PydanticUndefined and not (
            info.default is None and name in _primary_keys(model)
        ):
            defaults.append((name, info.default))
    return tuple(defaults)


def _primary_keys(model: type[SQLModel]) -> set[str]:
    return {column.name for column in sa_inspect(model).primary_key}


def _refresh_pending(existing: Submission, incoming: Incoming) -> None:
    # An edited post updates what moderators will read, but never an item already decided.
    if existing.status == SubmissionStatus.pending:
        existing.text = incoming.text
        existing.html = incoming.html
        existing.sensitive = existing.sensitive or incoming.sensitive
        existing.content_warning = incoming.content_warning or existing.content_warning


def _store_images(
    session: Session,
    storage: Storage,
    campaign: Campaign,
    submission: Submission,
    incoming: Incoming,
    known: PageHashes,
    near_distance: int,
) -> tuple[int, bool]:
    """Store an item's images (up to the origin's limit) as assets: (count, any duplicate).

    ``known`` is what they are compared with (the campaign's recent images); it gains the new
    assets, so later items of the same page are compared with these too. The rows go out in
    one bulk INSERT on the session's connection: ORM objects and their flush cost more than
    the statement (uploads are stored while the event loop receives others, and this work
    holds the GIL it waits for).
    """
    limit = MAX_IMAGES_PER_POST if incoming.origin == Origin.collected else MAX_IMAGES_PER_UPLOAD
    images = list(incoming.images)[:limit]
    rows = [_asset_row(storage, submission, position, item) for position, item in enumerate(images)]
    _point_at_duplicates(session, campaign, rows, known, near_distance)
    near = any(row["duplicate_of_id"] is not None for row in rows)
    if rows:
        # ids, so later items of the same page can point at these; RETURNING may come in any
        # order, so each id is matched to its row by position.
        stored = (
            session.connection()
            .execute(
                insert(MediaAsset).returning(col(MediaAsset.position), col(MediaAsset.id)), rows
            )
            .all()
        )
        ids = {position: asset_id for position, asset_id in stored if asset_id is not None}
        for row in rows:
            known.add_own(ids[row["position"]], row["phash"], row["sha256"])
    return len(images), near


def _point_at_duplicates(
    session: Session,
    campaign: Campaign,
    rows: Sequence[dict[str, Any]],
    known: PageHashes,
    near_distance: int,
) -> None:
    """Set each row's ``duplicate_of_id``: the image it repeats among those that still exist.

    Recent hashes are kept per process (``recent_hashes``), so a match may be an image
    deleted since; such images are forgotten and the rows compared again.
    """
    while True:
        for row in rows:
            row["duplicate_of_id"] = known.duplicate_of(row["sha256"], row["phash"], near_distance)
        matched = [row["duplicate_of_id"] for row in rows]
        outside = [
            asset_id for asset_id in matched if asset_id is not None and not known.is_own(asset_id)
        ]
        gone = set(outside) - existing(session, outside)
        if not gone:
            return
        forget(session, campaign, gone)


def _asset_row(
    storage: Storage, submission: Submission, position: int, item: IncomingImage
) -> dict[str, Any]:
    image = item.image
    keys = {
        style: storage.put(derivative.data, suffix=suffix_for(derivative.content_type))
        for style, derivative in image.derivatives.items()
    }
    return _with_defaults(
        MediaAsset,
        submission_id=submission.id,
        position=position,
        alt_text=item.alt_text[:1500],
        keys=keys,
        slide_bytes=len(image.slide.data),
        **image.columns(),
    )
