"""The moderation state machine: one transition function, one table of allowed edges,
and an AuditEntry written in the same transaction as every change.

Every decision starts by locking its row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the
transaction's first statement is a write, which takes the database write lock and waits for
it). Of two moderators deciding at once, the second therefore reads the first one's result and
gets Conflict (409); exactly one audit row records the change that happened.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Update, bindparam, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from aggregator.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from aggregator.models import Campaign, Submission, SubmissionStatus, utcnow
from aggregator.services.audit import MAX_REASON, audit

S = SubmissionStatus

TRANSITIONS: dict[SubmissionStatus, frozenset[SubmissionStatus]] = {
    S.pending: frozenset({S.approved, S.rejected, S.withdrawn}),
    S.approved: frozenset({S.removed, S.withdrawn}),
    S.rejected: frozenset({S.pending, S.withdrawn}),  # pending again = undo
    S.removed: frozenset({S.withdrawn}),
    S.withdrawn: frozenset(),
}
BULK_MAX = 500


def can_transition(current: SubmissionStatus, target: SubmissionStatus) -> bool:
    """True when the state machine has the edge ``current → target``."""
    return target in TRANSITIONS[current]


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


# The statements of every decision are built once, with bound parameters: constructing and
# cache-keying a fresh statement per call cost more CPU than the database work of an approval.


@functools.cache
def _touch_statement() -> Update:
    return (
        update(Submission)
        .where(col(Submission.id).in_(bindparam("ids", expanding=True)))
        .values(claimed_until=col(Submission.claimed_until))
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _locked_row_statement() -> SelectOfScalar[Submission]:
    return (
        select(Submission)
        .where(col(Submission.id) == bindparam("id"))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


@functools.cache
def _decision_statement(columns: tuple[str, ...]) -> Update:
    """UPDATE of ``columns`` (bound as ``new_<column>``) on row ``row_id`` if still ``current``."""
    table = Submission.__table__  # type: ignore[attr-defined]
    return (
        update(Submission)
        .where(
            col(Submission.id) == bindparam("row_id"),
            col(Submission.status) == bindparam("current", type_=table.c.status.type),
        )
        .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in columns})
        .execution_options(synchronize_session=False)
    )


def take_write_lock(session: Session, ids: Iterable[int]) -> None:
    """On SQLite, make a write the transaction's first statement (waits for the lock)."""
    if _is_sqlite(session):
        session.execute(_touch_statement(), {"ids": list(ids)})


def lock_submission(session: Session, submission_id: int) -> Submission:
    """Load one submission locked for this transaction, fresh from the database; or NotFound."""
    take_write_lock(session, [submission_id])
    submission = session.exec(_locked_row_statement(), params={"id": submission_id}).first()
    if submission is None:
        session.rollback()
        raise NotFound(f"There is no submission {submission_id}.")
    return submission


def _apply(
    session: Session,
    submission: Submission,
    to: SubmissionStatus,
    *,
    actor_id: int | None,
    actor_label: str,
    reason: str,
    expected: SubmissionStatus | None,
    also: dict[str, Any] | None = None,
) -> None:
    """Check the edge and write status (+ ``also`` columns) and audit on a locked row.

    No commit. The in-memory row is updated to match without being marked dirty, so the
    caller needs neither a second UPDATE nor a refresh.
    """
    current = SubmissionStatus(submission.status)
    if expected is not None and current != expected:
        raise Conflict(f"Submission {submission.id} is already {current.value}.")
    if not can_transition(current, to):
        raise InvalidTransition(
            f"Submission {submission.id} is {current.value}; it cannot become {to.value}."
        )
    now = utcnow()
    values: dict[str, Any] = {
        "status": to,
        "decided_at": now,
        "claimed_by_id": None,
        "claimed_until": None,
        **(also or {}),
    }
    result = session.execute(
        _decision_statement(tuple(values)),
        {"row_id": submission.id, "current": current, **{f"new_{k}": v for k, v in values.items()}},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"Someone else changed submission {submission.id} first.")
    for key, value in values.items():
        set_committed_value(submission, key, value)
    audit(
        session,
        action="transition",
        submission_id=submission.id,
        actor_id=actor_id,
        actor_label=actor_label,
        reason=reason,
        from_status=current.value,
        to_status=to.value,
    )


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

    The row is locked first, so of two moderators deciding at once exactly one wins; the other
    gets Conflict (409). ``expected`` lets a caller insist on the state it showed the moderator.
    """
    submission = lock_submission(session, submission_id)
    try:
        _apply(
            session,
            submission,
            to,
            actor_id=actor_id,
            actor_label=actor_label,
            reason=reason,
            expected=expected,
        )
    except Conflict:
        session.rollback()
        raise
    if commit:
        session.commit()
    return submission


@dataclass
class Decision:
    """The outcome of one approval: the submission and whether it still needs a second one."""

    submission: Submission
    needs_second_approval: bool = False


def _needs_two(session: Session, submission: Submission) -> bool:
    if not submission.flags:
        return False
    campaign = session.get(Campaign, submission.campaign_id)
    return bool(campaign and campaign.require_second_approval)


def _check_claim(submission: Submission, actor_id: int | None) -> None:
    if (
        actor_id is not None
        and submission.claimed_by_id not in (None, actor_id)
        and submission.claimed_until is not None
        and submission.claimed_until > utcnow()
    ):
        raise Conflict("Another moderator is looking at this item right now.", code="claimed")


def approve(
    *,
    session: Session,
    submission_id: int,
    actor_id: int | None,
    actor_label: str = "",
    expected: SubmissionStatus | None = None,
) -> Decision:
    """Approve; a flagged item of a campaign asking for two approvals needs two moderators."""
    submission = lock_submission(session, submission_id)
    try:
        if SubmissionStatus(submission.status) == S.pending:
            _check_claim(submission, actor_id)
        if (
            SubmissionStatus(submission.status) == S.pending
            and actor_id is not None
            and _needs_two(session, submission)
        ):
            if submission.first_approved_by_id is None:
                submission.first_approved_by_id = actor_id
                submission.approvals = [actor_id]
                submission.claimed_by_id = None
                submission.claimed_until = None
                session.add(submission)
                audit(
                    session,
                    action="first_approval",
                    submission_id=submission_id,
                    actor_id=actor_id,
                    actor_label=actor_label,
                    detail={"flags": list(submission.flags)},
                )
                session.commit()
                return Decision(submission, needs_second_approval=True)
            if submission.first_approved_by_id == actor_id:
                raise Conflict(
                    "This flagged item needs the approval of a second moderator.",
                    code="second_approval_needed",
                )
        approvals = [*(submission.approvals or []), actor_id] if actor_id is not None else None
        _apply(
            session,
            submission,
            S.approved,
            actor_id=actor_id,
            actor_label=actor_label,
            reason="",
            expected=expected,
            also={"approvals": approvals} if approvals else None,
        )
    except Conflict:
        session.rollback()
        raise
    session.commit()
    return Decision(submission)


def clean_reason(reason: str) -> str:
    """A rejection or takedown reason, trimmed; InvalidInput when absurdly long."""
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"Please keep the reason under {MAX_REASON} characters.", field="reason")
    return reason
