"""The moderation state machine: one transition function, one table of allowed edges,
and an AuditEntry written in the same transaction as every change."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from aggregator.errors import Conflict, InvalidTransition, NotFound
from aggregator.models import AuditEntry, Submission, SubmissionStatus, utcnow

S = SubmissionStatus

TRANSITIONS: dict[SubmissionStatus, frozenset[SubmissionStatus]] = {
    S.pending: frozenset({S.approved, S.rejected, S.withdrawn}),
    S.approved: frozenset({S.removed, S.withdrawn}),
    S.rejected: frozenset({S.pending, S.withdrawn}),  # pending again = undo
    S.removed: frozenset({S.withdrawn}),
    S.withdrawn: frozenset(),
}


def can_transition(current: SubmissionStatus, target: SubmissionStatus) -> bool:
    """True when the state machine has the edge ``current → target``."""
    return target in TRANSITIONS[current]


def transition(
    *,
    session: Session,
    submission_id: int,
    to: SubmissionStatus,
    actor_id: int | None = None,
    actor_label: str = "",
    reason: str = "",
    expected: SubmissionStatus | None = None,
    commit: bool = True,
) -> Submission:
    """Move one submission to ``to`` and audit it.

    The UPDATE is conditional on the status read, so of two moderators deciding at once
    exactly one wins; the other gets Conflict (409). ``expected`` lets a caller insist on the
    state it showed the moderator.
    """
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"There is no submission {submission_id}.")
    current = SubmissionStatus(submission.status)
    if expected is not None and current != expected:
        raise Conflict(f"Submission {submission_id} is already {current.value}.")
    if not can_transition(current, to):
        raise InvalidTransition(
            f"Submission {submission_id} is {current.value}; it cannot become {to.value}."
        )
    now = utcnow()
    result = session.execute(
        update(Submission)
        .where(col(Submission.id) == submission_id, col(Submission.status) == current)
        .values(status=to, decided_at=now, claimed_by_id=None, claimed_until=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise Conflict(f"Someone else changed submission {submission_id} first.")
    session.add(
        AuditEntry(
            submission_id=submission_id,
            actor_id=actor_id,
            actor_label=actor_label,
            action="transition",
            from_status=current.value,
            to_status=to.value,
            reason=reason,
            at=now,
        )
    )
    if commit:
        session.commit()
    session.refresh(submission)
    return submission
