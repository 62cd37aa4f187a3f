"""A participant's receipt: find a submission by its private token, show its state, withdraw it.

Only the token's sha256 is stored (``Submission.receipt_token_hash``). Withdrawal moves the
submission to ``withdrawn`` through the state machine (so slideshows, the gallery and exports
drop it on their next read), deletes its image files, and blanks what the person wrote: the
audit keeps only that a withdrawal happened and when.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import update
from sqlmodel import Session, col, select

from aggregator.errors import NotFound
from aggregator.media.storage import Storage
from aggregator.models import MediaAsset, Submission, SubmissionStatus
from aggregator.services import takedown
from aggregator.services.users import hash_token

# token_urlsafe(24) makes 32 characters; anything far off that is not a receipt.
_TOKEN_RE: Final = re.compile(r"\A[A-Za-z0-9_-]{22,86}\Z")

ReceiptState = Literal["waiting", "shown", "not_shown", "withdrawn"]

_STATES: Final[dict[SubmissionStatus, ReceiptState]] = {
    SubmissionStatus.pending: "waiting",
    SubmissionStatus.approved: "shown",
    SubmissionStatus.rejected: "not_shown",
    SubmissionStatus.removed: "not_shown",
    SubmissionStatus.withdrawn: "withdrawn",
}


@dataclass(frozen=True)
class Receipt:
    """What the receipt page shows."""

    submission: Submission
    state: ReceiptState
    assets: list[MediaAsset]


def find_submission(*, session: Session, token: str) -> Submission:
    """The submission whose receipt token is ``token``, or NotFound (same for malformed)."""
    if not _TOKEN_RE.match(token or ""):
        raise NotFound("There is no receipt at this address.", code="receipt_not_found")
    digest = hash_token(token)
    submission = session.exec(
        select(Submission).where(Submission.receipt_token_hash == digest)
    ).first()
    # The lookup is by hash already; compare_digest keeps the final check constant-time.
    if submission is None or not hmac.compare_digest(submission.receipt_token_hash or "", digest):
        raise NotFound("There is no receipt at this address.", code="receipt_not_found")
    return submission


def receipt_for(*, session: Session, token: str) -> Receipt:
    """The receipt page's data: state in words and the photos that still exist."""
    submission = find_submission(session=session, token=token)
    state = _STATES[SubmissionStatus(submission.status)]
    assets: list[MediaAsset] = []
    if state != "withdrawn":
        assets = list(
            session.exec(
                select(MediaAsset)
                .where(MediaAsset.submission_id == submission.id)
                .order_by(col(MediaAsset.position))
            ).all()
        )
    return Receipt(submission, state, [a for a in assets if a.keys.get("thumb")])


def withdraw(*, session: Session, storage: Storage, token: str) -> Submission:
    """Withdraw the submission of ``token`` and delete its files; repeating it is harmless."""
    submission = find_submission(session=session, token=token)
    session.commit()  # end the read: on SQLite the withdrawal must begin with its write lock
    submission = takedown.withdraw(
        session=session,
        storage=storage,
        submission_id=submission.id,  # type: ignore[arg-type]
        actor_label="participant",
        reason="withdrawn by the participant",
    )
    _forget(submission)
    session.add(submission)
    session.execute(
        update(MediaAsset).where(col(MediaAsset.submission_id) == submission.id).values(alt_text="")
    )
    session.commit()
    return submission


def _forget(submission: Submission) -> None:
    # Keep the row (its receipt still says "withdrawn") but nothing the person wrote.
    submission.author_name = ""
    submission.author_handle = None
    submission.author_url = None
    submission.city = None
    submission.text = ""
    submission.html = None
    submission.content_warning = None
    submission.extra = {}
