"""Bulk decisions: approve or reject a moderator's selection in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from aggregator.errors import InvalidInput
from aggregator.models import AuditEntry, Campaign, Submission, SubmissionStatus, utcnow
from aggregator.services.moderation import BULK_MAX, clean_reason, take_write_lock

S = SubmissionStatus


@dataclass
class BulkResult:
    """What a bulk action did, id by id."""

    done: list[int] = field(default_factory=list)
    first_approvals: list[int] = field(default_factory=list)
    conflicts: dict[int, str] = field(default_factory=dict)


def bulk(
    *,
    session: Session,
    ids: Sequence[int],
    action: str,
    actor_id: int | None,
    actor_label: str = "",
    reason: str = "",
) -> BulkResult:
    """Approve or reject many pending items in one transaction; others are reported, not fatal.

    Rows another moderator is deciding right now are skipped (``SKIP LOCKED`` on PostgreSQL)
    and reported as conflicts, like rows that are no longer pending.
    """
    if action not in ("approve", "reject"):
        raise InvalidInput("The action must be approve or reject.", field="action")
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        raise InvalidInput("Select at least one item.", field="ids")
    if len(wanted) > BULK_MAX:
        raise InvalidInput("Select at most 500 items at once.", field="ids")
    reason = clean_reason(reason)
    take_write_lock(session, wanted)
    # Plain columns, not ORM objects: a bulk of 100 must not pay for hydrating 100 rows.
    rows = session.execute(
        sa_select(
            col(Submission.id),
            col(Submission.status),
            col(Submission.campaign_id),
            col(Submission.flags),
            col(Submission.first_approved_by_id),
            col(Submission.claimed_by_id),
            col(Submission.claimed_until),
        )
        .where(col(Submission.id).in_(wanted))
        .with_for_update(skip_locked=True)
    ).all()
    found = {int(row[0]): row for row in rows}
    result = BulkResult()
    two_step = _campaigns_needing_two(session, {int(row[2]) for row in rows if row[3]})
    now = utcnow()
    final: list[int] = []
    for submission_id in wanted:
        row = found.get(submission_id)
        if row is None:
            result.conflicts[submission_id] = "busy_or_missing"
            continue
        _id, status, campaign_id, flags, first_by, claimed_by, claimed_until = row
        if SubmissionStatus(status) != S.pending:
            result.conflicts[submission_id] = SubmissionStatus(status).value
        elif (
            actor_id is not None
            and claimed_by not in (None, actor_id)
            and claimed_until is not None
            and claimed_until > now
        ):
            result.conflicts[submission_id] = "claimed"
        elif action == "approve" and actor_id is not None and flags and campaign_id in two_step:
            if first_by is None:
                session.execute(
                    update(Submission)
                    .where(col(Submission.id) == submission_id)
                    .values(
                        first_approved_by_id=actor_id,
                        approvals=[actor_id],
                        claimed_by_id=None,
                        claimed_until=None,
                    )
                    .execution_options(synchronize_session=False)
                )
                result.first_approvals.append(submission_id)
            elif first_by == actor_id:
                result.conflicts[submission_id] = "second_approval_needed"
            else:
                final.append(submission_id)
        else:
            final.append(submission_id)
    to = S.approved if action == "approve" else S.rejected
    if final:
        session.execute(
            update(Submission)
            .where(col(Submission.id).in_(final), col(Submission.status) == S.pending)
            .values(status=to, decided_at=now, claimed_by_id=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        result.done = final
    entries = [
        {
            "submission_id": i,
            "actor_id": actor_id,
            "actor_label": actor_label[:100],
            "action": "transition",
            "from_status": S.pending.value,
            "to_status": to.value,
            "reason": reason,
            "detail": {"bulk": True},
            "at": now,
        }
        for i in result.done
    ] + [
        {
            "submission_id": i,
            "actor_id": actor_id,
            "actor_label": actor_label[:100],
            "action": "first_approval",
            "from_status": None,
            "to_status": None,
            "reason": "",
            "detail": {"bulk": True},
            "at": now,
        }
        for i in result.first_approvals
    ]
    if entries:
        session.execute(insert(AuditEntry), entries)
    session.commit()
    return result


def _campaigns_needing_two(session: Session, campaign_ids: set[int]) -> set[int]:
    if not campaign_ids:
        return set()
    return {
        int(i)
        for i in session.exec(
            select(Campaign.id).where(
                col(Campaign.id).in_(campaign_ids), col(Campaign.require_second_approval)
            )
        ).all()
        if i is not None
    }
