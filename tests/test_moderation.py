"""The state machine, the decisions, claims and second approvals (services, no HTTP)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from aggregator.models import AuditEntry, Role, Submission, SubmissionStatus, utcnow
from aggregator.services import moderation
from aggregator.services.moderation import TRANSITIONS, approve, transition
from aggregator.services.moderation_bulk import bulk
from aggregator.services.moderation_queue import (
    QueueFilters,
    queue_page,
    release_claims,
    renew_claims,
)
from tests.factories import make_campaign, make_source, make_submission, make_user
from tests.moderation_support import fresh_session

S = SubmissionStatus


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


def audits(session: Session, submission_id: int) -> list[AuditEntry]:
    """Audit rows of one submission, oldest first."""
    return list(
        session.exec(
            select(AuditEntry)
            .where(AuditEntry.submission_id == submission_id)
            .order_by(col(AuditEntry.id))
        ).all()
    )


ALL_EDGES = list(itertools.product(list(S), list(S)))


@pytest.mark.parametrize(("start", "target"), ALL_EDGES, ids=[f"{a}->{b}" for a, b in ALL_EDGES])
def test_every_edge_allowed_or_forbidden(session: Session, start: S, target: S) -> None:
    campaign = make_campaign(session)
    submission = make_submission(session, campaign, status=start)
    assert submission.id is not None
    allowed = target in TRANSITIONS[start]
    if allowed:
        result = transition(
            session=session, submission_id=submission.id, to=target, actor_label="test"
        )
        assert result.status == target
        (entry,) = audits(session, submission.id)
        assert (entry.from_status, entry.to_status, entry.actor_label) == (
            start.value,
            target.value,
            "test",
        )
        assert entry.at is not None
    else:
        with pytest.raises(InvalidTransition):
            transition(session=session, submission_id=submission.id, to=target)
        session.expire_all()
        assert session.get(Submission, submission.id).status == start  # type: ignore[union-attr]
        assert audits(session, submission.id) == []


def test_transition_table_matches_the_issue() -> None:
    assert TRANSITIONS[S.pending] == {S.approved, S.rejected, S.withdrawn}
    assert TRANSITIONS[S.approved] == {S.removed, S.withdrawn}
    assert TRANSITIONS[S.rejected] == {S.pending, S.withdrawn}
    assert TRANSITIONS[S.removed] == {S.withdrawn}
    assert TRANSITIONS[S.withdrawn] == frozenset()


def test_unknown_submission_and_expected_state(session: Session) -> None:
    with pytest.raises(NotFound):
        transition(session=session, submission_id=999_999, to=S.approved)
    submission = make_submission(session, make_campaign(session), status=S.rejected)
    with pytest.raises(Conflict):
        transition(
            session=session,
            submission_id=submission.id,  # type: ignore[arg-type]
            to=S.pending,
            expected=S.approved,
        )


def test_audit_and_status_share_one_transaction(session: Session) -> None:
    """D4: raise between status and audit → neither persists."""
    submission = make_submission(session, make_campaign(session))
    transition(
        session=session,
        submission_id=submission.id,  # type: ignore[arg-type]
        to=S.approved,
        commit=False,
    )
    session.rollback()  # the caller failed after the transition
    session.expire_all()
    assert session.get(Submission, submission.id).status == S.pending  # type: ignore[union-attr]
    assert audits(session, submission.id) == []  # type: ignore[arg-type]


def test_approving_a_taken_down_item_conflicts(session: Session) -> None:
    submission = make_submission(session, make_campaign(session), status=S.removed)
    moderator = make_user(session)
    with pytest.raises(Conflict) as exc:
        approve(session=session, submission_id=submission.id, actor_id=moderator.id)  # type: ignore[arg-type]
    assert exc.value.status_code == 409


def test_second_approval_for_flagged_items(session: Session) -> None:
    campaign = make_campaign(session, require_second_approval=True)
    flagged = make_submission(session, campaign, flags=["near_duplicate"])
    plain = make_submission(session, campaign)
    first, second = make_user(session), make_user(session)
    decision = approve(session=session, submission_id=flagged.id, actor_id=first.id)  # type: ignore[arg-type]
    assert decision.needs_second_approval and decision.submission.status == S.pending
    with pytest.raises(Conflict) as exc:
        approve(session=session, submission_id=flagged.id, actor_id=first.id)  # type: ignore[arg-type]
    assert exc.value.code == "second_approval_needed"
    decision = approve(session=session, submission_id=flagged.id, actor_id=second.id)  # type: ignore[arg-type]
    assert decision.submission.status == S.approved
    assert decision.submission.approvals == [first.id, second.id]
    actions = [a.action for a in audits(session, flagged.id)]  # type: ignore[arg-type]
    assert actions == ["first_approval", "transition"]
    # Unflagged items need one approval even in such a campaign.
    plain_id = int(plain.id or 0)
    assert not approve(
        session=session, submission_id=plain_id, actor_id=first.id
    ).needs_second_approval


def test_claims_keep_two_moderators_apart(session: Session) -> None:
    campaign = make_campaign(session)
    items = [make_submission(session, campaign) for _ in range(5)]
    anna, boris = make_user(session), make_user(session)
    page_a = queue_page(session, user_id=anna.id, filters=QueueFilters(), size=3)  # type: ignore[arg-type]
    page_b = queue_page(session, user_id=boris.id, filters=QueueFilters(), size=3)  # type: ignore[arg-type]
    ids_a = [c.submission.id for c in page_a.cards]
    ids_b = [c.submission.id for c in page_b.cards]
    assert ids_a == [s.id for s in items[:3]]
    assert ids_b == [s.id for s in items[3:]]
    # Anna reloading sees her own claims again.
    again = queue_page(session, user_id=anna.id, filters=QueueFilters(), size=3)  # type: ignore[arg-type]
    assert [c.submission.id for c in again.cards] == ids_a
    # Boris cannot decide an item Anna is looking at.
    with pytest.raises(Conflict) as exc:
        approve(session=session, submission_id=ids_a[0], actor_id=boris.id)  # type: ignore[arg-type]
    assert exc.value.code == "claimed"
    assert renew_claims(session, user_id=anna.id, ids=ids_a + ids_b) == ids_a  # type: ignore[arg-type]
    release_claims(session, user_id=anna.id)  # type: ignore[arg-type]
    approve(session=session, submission_id=ids_a[0], actor_id=boris.id)  # type: ignore[arg-type]


def test_expired_claims_are_free(session: Session) -> None:
    campaign = make_campaign(session)
    item = make_submission(session, campaign)
    anna, boris = make_user(session), make_user(session)
    queue_page(session, user_id=anna.id, filters=QueueFilters())  # type: ignore[arg-type]
    row = session.get(Submission, item.id)
    assert row is not None and row.claimed_by_id == anna.id
    row.claimed_until = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    page = queue_page(session, user_id=boris.id, filters=QueueFilters())  # type: ignore[arg-type]
    assert [c.submission.id for c in page.cards] == [item.id]


def test_keyset_pages_and_filters(session: Session) -> None:
    campaign, other = make_campaign(session), make_campaign(session)
    source = make_source(session, campaign)
    items = [make_submission(session, campaign, language="ru") for _ in range(7)]
    flagged = make_submission(session, campaign, flags=["rule:отрицание"], source_id=source.id)
    make_submission(session, other, language="kk")
    user = make_user(session)
    filters = QueueFilters(campaign_id=campaign.id)
    first = queue_page(session, user_id=user.id, filters=filters, size=3)  # type: ignore[arg-type]
    assert [c.submission.id for c in first.cards] == [s.id for s in items[:3]]
    assert first.prev_before is None and first.next_after == items[2].id
    second = queue_page(
        session,
        user_id=user.id,  # type: ignore[arg-type]
        filters=QueueFilters(campaign_id=campaign.id, after=first.next_after),
        size=3,
    )
    assert [c.submission.id for c in second.cards] == [s.id for s in items[3:6]]
    assert second.prev_before == items[3].id
    back = queue_page(
        session,
        user_id=user.id,  # type: ignore[arg-type]
        filters=QueueFilters(campaign_id=campaign.id, before=second.prev_before),
        size=3,
    )
    assert [c.submission.id for c in back.cards] == [s.id for s in items[:3]]

    def ids(**kw: object) -> list[int | None]:
        page = queue_page(session, user_id=user.id, filters=QueueFilters(**kw))  # type: ignore[arg-type]
        return [c.submission.id for c in page.cards]

    assert ids(flag="rule") == [flagged.id]
    assert ids(flag="any") == [flagged.id]
    assert ids(source_id=source.id) == [flagged.id]
    assert len(ids(language="kk")) == 1
    assert ids(order="newest")[0] != items[0].id
    assert flagged.id not in ids(flag="none")
    assert ids(status=S.approved) == []


def test_bulk_reports_conflicts_and_audits_each(session: Session) -> None:
    campaign = make_campaign(session)
    pending = [make_submission(session, campaign) for _ in range(3)]
    done = make_submission(session, campaign, status=S.rejected)
    user = make_user(session)
    result = bulk(
        session=session,
        ids=[int(p.id or 0) for p in pending] + [int(done.id or 0), 999_999],
        action="approve",
        actor_id=user.id,
        actor_label="bulk test",
    )
    assert result.done == [p.id for p in pending]
    assert result.conflicts == {done.id: "rejected", 999_999: "busy_or_missing"}
    for item in pending:
        (entry,) = audits(session, item.id)  # type: ignore[arg-type]
        assert (entry.from_status, entry.to_status) == ("pending", "approved")
    with pytest.raises(InvalidInput):
        bulk(session=session, ids=[], action="approve", actor_id=user.id)
    with pytest.raises(InvalidInput):
        bulk(session=session, ids=[1], action="delete", actor_id=user.id)


def test_bulk_respects_second_approval(session: Session) -> None:
    campaign = make_campaign(session, require_second_approval=True)
    flagged = make_submission(session, campaign, flags=["sensitive"])
    first, second = make_user(session), make_user(session)
    result = bulk(session=session, ids=[flagged.id], action="approve", actor_id=first.id)  # type: ignore[list-item]
    assert result.first_approvals == [flagged.id] and result.done == []
    result = bulk(session=session, ids=[flagged.id], action="approve", actor_id=first.id)  # type: ignore[list-item]
    assert result.conflicts == {flagged.id: "second_approval_needed"}
    result = bulk(session=session, ids=[flagged.id], action="approve", actor_id=second.id)  # type: ignore[list-item]
    assert result.done == [flagged.id]


def test_first_approver_no_longer_gets_the_item(session: Session) -> None:
    campaign = make_campaign(session, require_second_approval=True)
    flagged = make_submission(session, campaign, flags=["near_duplicate"])
    first, second = make_user(session), make_user(session)
    approve(session=session, submission_id=flagged.id, actor_id=first.id)  # type: ignore[arg-type]
    assert queue_page(session, user_id=first.id, filters=QueueFilters()).cards == []  # type: ignore[arg-type]
    page = queue_page(session, user_id=second.id, filters=QueueFilters(flag="second_approval"))  # type: ignore[arg-type]
    assert [c.submission.id for c in page.cards] == [flagged.id]
    assert page.cards[0].first_approver is not None


def test_reason_is_kept_and_bounded(session: Session) -> None:
    submission = make_submission(session, make_campaign(session))
    user = make_user(session, role=Role.moderator)
    transition(
        session=session,
        submission_id=submission.id,  # type: ignore[arg-type]
        to=S.rejected,
        actor_id=user.id,
        reason=moderation.clean_reason("  Отрицание Холокоста  "),
    )
    assert audits(session, submission.id)[0].reason == "Отрицание Холокоста"  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        moderation.clean_reason("x" * 1001)
