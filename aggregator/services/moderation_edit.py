"""Moderator edits that do not change the status: caption, credit and alt text, rotation,
and pinning an item so slideshows show it next. Each writes an audit row."""

from __future__ import annotations

import io
from collections.abc import Mapping

from PIL import Image
from sqlmodel import Session, col, select

from aggregator.errors import Conflict, InvalidInput, NotFound
from aggregator.media import MediaLimits
from aggregator.media.color import placeholder_color
from aggregator.media.dedup import perceptual_hash
from aggregator.media.storage import Storage
from aggregator.models import MediaAsset, Submission, SubmissionStatus, utcnow
from aggregator.services.audit import audit
from aggregator.services.moderation import lock_submission

MAX_TEXT = 5000
MAX_CREDIT = 200
MAX_ALT = 1500
ROTATIONS = {
    90: Image.Transpose.ROTATE_270,  # Pillow turns counter-clockwise; 90 here is clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
# Items that are gone or refused are not edited any more (their text may be erased).
CLOSED = frozenset({SubmissionStatus.removed, SubmissionStatus.withdrawn})


def _open(session: Session, submission_id: int) -> Submission:
    submission = lock_submission(session, submission_id)
    if SubmissionStatus(submission.status) in CLOSED:
        session.rollback()
        raise Conflict(f"Submission {submission_id} was taken down or withdrawn.")
    return submission


def edit(
    *,
    session: Session,
    submission_id: int,
    actor_id: int | None,
    actor_label: str = "",
    text: str | None = None,
    author_name: str | None = None,
    alt_texts: Mapping[int, str] | None = None,
) -> Submission:
    """Change caption, credit and/or alt texts (keyed by asset id); None leaves a field alone."""
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidInput(f"The caption may have at most {MAX_TEXT} characters.", field="text")
    if author_name is not None and len(author_name.strip()) > MAX_CREDIT:
        raise InvalidInput(
            f"The credit may have at most {MAX_CREDIT} characters.", field="author_name"
        )
    for value in (alt_texts or {}).values():
        if len(value) > MAX_ALT:
            raise InvalidInput(
                f"An image description may have at most {MAX_ALT} characters.", field="alt_text"
            )
    submission = _open(session, submission_id)
    changed: list[str] = []
    if text is not None and text != submission.text:
        submission.text = text
        # The sanitised HTML of a collected post no longer matches the edited caption.
        submission.html = None
        changed.append("text")
    if author_name is not None and author_name.strip() != submission.author_name:
        submission.author_name = author_name.strip()
        changed.append("author_name")
    if alt_texts:
        assets = session.exec(
            select(MediaAsset).where(MediaAsset.submission_id == submission_id)
        ).all()
        by_id = {asset.id: asset for asset in assets}
        for asset_id, value in alt_texts.items():
            asset = by_id.get(int(asset_id))
            if asset is None:
                session.rollback()
                raise InvalidInput("That image is not part of this item.", field="alt_text")
            if asset.alt_text != value.strip():
                asset.alt_text = value.strip()
                session.add(asset)
                changed.append(f"alt_text:{asset.position}")
    if changed:
        session.add(submission)
        audit(
            session,
            action="edit",
            submission_id=submission_id,
            actor_id=actor_id,
            actor_label=actor_label,
            detail={"fields": changed},
        )
    session.commit()
    session.refresh(submission)
    return submission


def _encode(image: Image.Image, quality: int) -> bytes:
    """JPEG without any metadata segment (same rules as the media pipeline)."""
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False, exif=b"")
    return buffer.getvalue()


def rotate(
    *,
    session: Session,
    storage: Storage,
    submission_id: int,
    degrees: int,
    actor_id: int | None,
    actor_label: str = "",
    position: int | None = None,
    limits: MediaLimits | None = None,
) -> list[MediaAsset]:
    """Turn the item's images clockwise by 90, 180 or 270 degrees.

    The originals are never kept, so the new derivatives are made from the stored slide image;
    new files get new keys (caches of the old URLs cannot show the wrong orientation), and the
    old files are deleted once the new keys are committed.
    """
    if degrees not in ROTATIONS:
        raise InvalidInput("Rotate by 90, 180 or 270 degrees.", field="degrees")
    limits = limits or MediaLimits()
    submission = _open(session, submission_id)
    query = select(MediaAsset).where(MediaAsset.submission_id == submission_id)
    if position is not None:
        query = query.where(MediaAsset.position == position)
    assets = list(session.exec(query.order_by(col(MediaAsset.position))).all())
    if not assets:
        session.rollback()
        raise NotFound("This item has no image to rotate.")
    old_keys: list[str] = []
    new_keys: list[str] = []
    try:
        for asset in assets:
            slide_key = (asset.keys or {}).get("slide")
            if not slide_key:
                raise NotFound("The image file of this item is gone.")
            with storage.open(slide_key) as fh, Image.open(fh, formats=("JPEG",)) as source:
                turned = source.convert("RGB").transpose(ROTATIONS[degrees])
            thumb = turned.copy()
            thumb.thumbnail((limits.thumb_size, limits.thumb_size), Image.Resampling.LANCZOS)
            slide_data = _encode(turned, limits.slide_quality)
            keys = {
                "slide": storage.put(slide_data, suffix=".jpg"),
                "thumb": storage.put(_encode(thumb, limits.thumb_quality), suffix=".jpg"),
            }
            new_keys.extend(keys.values())
            old_keys.extend((asset.keys or {}).values())
            asset.keys = keys
            asset.width, asset.height = turned.size
            asset.slide_bytes = len(slide_data)
            asset.phash = perceptual_hash(thumb)
            asset.color = placeholder_color(thumb)
            session.add(asset)
        audit(
            session,
            action="rotate",
            submission_id=submission.id,
            actor_id=actor_id,
            actor_label=actor_label,
            detail={"degrees": degrees, "positions": [a.position for a in assets]},
        )
        session.commit()
    except BaseException:
        session.rollback()
        for key in new_keys:
            storage.delete(key)
        raise
    mine = {asset.id for asset in assets}
    others = session.exec(
        select(MediaAsset).where(col(MediaAsset.sha256).in_({a.sha256 for a in assets}))
    ).all()
    shared = {k for other in others if other.id not in mine for k in (other.keys or {}).values()}
    for key in old_keys:
        if key not in shared:
            storage.delete(key)
    session.commit()  # end the read transaction
    return assets


def pin(
    *,
    session: Session,
    submission_id: int,
    pinned: bool,
    actor_id: int | None,
    actor_label: str = "",
) -> Submission:
    """Pin (slideshows show it next) or unpin an item; rejected items cannot be pinned."""
    submission = _open(session, submission_id)
    if pinned and SubmissionStatus(submission.status) == SubmissionStatus.rejected:
        session.rollback()
        raise Conflict("A rejected item cannot be pinned.")
    submission.pinned_at = utcnow() if pinned else None
    session.add(submission)
    audit(
        session,
        action="pin" if pinned else "unpin",
        submission_id=submission_id,
        actor_id=actor_id,
        actor_label=actor_label,
    )
    session.commit()
    session.refresh(submission)
    return submission
