"""Takedown and erasure: a removed or withdrawn item leaves every screen, export and URL.

Slideshows, galleries and exports only ever select ``approved`` items, so the status change
alone takes an item off the next poll. The derivative files are deleted as well, so the old
``/media/{key}`` URLs answer 404 at once (and caches expire within PUBLIC_CACHE's max-age).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from aggregator.media.storage import Storage
from aggregator.models import MediaAsset, Submission, SubmissionStatus
from aggregator.services.audit import audit
from aggregator.services.moderation import clean_reason, lock_submission, transition

S = SubmissionStatus


def erase_submission_media(
    *, session: Session, storage: Storage, submission: Submission
) -> list[str]:
    """Delete the submission's derivative files that no other asset uses; clear their keys.

    The rows are updated and flushed (the caller commits); returns the deleted keys.
    """
    assets = session.exec(select(MediaAsset).where(MediaAsset.submission_id == submission.id)).all()
    mine = {key for asset in assets for key in (asset.keys or {}).values()}
    if not mine:
        return []
    # Keys are random per stored file, but an identical image (same sha256) may share them.
    hashes = {asset.sha256 for asset in assets}
    others = session.exec(
        select(MediaAsset).where(
            col(MediaAsset.sha256).in_(hashes), MediaAsset.submission_id != submission.id
        )
    ).all()
    shared = {key for other in others for key in (other.keys or {}).values()}
    for asset in assets:
        asset.keys = {}
        session.add(asset)
    session.flush()
    deleted = []
    for key in sorted(mine - shared):
        storage.delete(key)
        deleted.append(key)
    return deleted


def take_down(
    *,
    session: Session,
    storage: Storage,
    submission_id: int,
    actor_id: int | None,
    actor_label: str = "",
    reason: str = "",
) -> Submission:
    """Moderator takedown: approved → removed, files erased, in one transaction."""
    submission = transition(
        session=session,
        submission_id=submission_id,
        to=S.removed,
        actor_id=actor_id,
        actor_label=actor_label,
        reason=clean_reason(reason),
        commit=False,
    )
    erase_submission_media(session=session, storage=storage, submission=submission)
    session.commit()
    return submission


def withdraw(
    *,
    session: Session,
    storage: Storage,
    submission_id: int,
    actor_label: str = "participant",
    reason: str = "",
) -> Submission:
    """Participant or upstream withdrawal from any state: files erased, status withdrawn.

    Withdrawing twice is not an error: the second call only makes sure the files are gone.
    """
    submission = lock_submission(session, submission_id)
    if SubmissionStatus(submission.status) == S.withdrawn:
        erase_submission_media(session=session, storage=storage, submission=submission)
        session.commit()
        return submission
    submission = transition(
        session=session,
        submission_id=submission_id,
        to=S.withdrawn,
        actor_label=actor_label,
        reason=clean_reason(reason),
        commit=False,
    )
    erase_submission_media(session=session, storage=storage, submission=submission)
    audit(session, action="erase", submission_id=submission_id, actor_label=actor_label)
    session.commit()
    return submission
