"""M6: concurrent decisions end in one state, one audit row, and a 409 for the loser.

Runs on SQLite (the write lock serialises) and on PostgreSQL (row locks; this is the case that
matters for several web workers): set AGGREGATOR_TEST_DATABASE_URL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.errors import Conflict
from aggregator.models import AuditEntry, Submission, SubmissionStatus
from aggregator.services import moderation, moderation_bulk
from aggregator.services.moderation_queue import QueueFilters, queue_page
from tests.factories import make_campaign, make_submission, make_user
from tests.moderation_support import fresh_session

S = SubmissionStatus
ROUNDS = 12


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


def race(engine: Engine, *actions: Callable[[Session], object]) -> list[object]:
    """Run each action in its own thread and session, released at the same moment."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            barrier.wait()
            try:
                results[index] = actions[index](own)
            except Exception as exc:  # noqa: BLE001 - the loser's error is the result
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def approver(item_id: int, user_id: int | None) -> Callable[[Session], object]:
    """An action approving one item as one moderator."""

    def run(session: Session) -> object:
        return moderation.approve(session=session, submission_id=item_id, actor_id=user_id)

    return run


def rejecter(item_id: int, user_id: int | None) -> Callable[[Session], object]:
    """An action rejecting one item as one moderator."""

    def run(session: Session) -> object:
        return moderation.transition(
            session=session, submission_id=item_id, to=S.rejected, actor_id=user_id
        )

    return run


def audit_count(session: Session, submission_id: int) -> int:
    """Transition rows of one submission."""
    return int(
        session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.submission_id == submission_id, AuditEntry.action == "transition")
        ).one()
    )


def test_approve_against_reject_one_winner(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    anna, boris = make_user(session), make_user(session)
    for _ in range(ROUNDS):
        item = make_submission(session, campaign)
        item_id = int(item.id or 0)
        results = race(engine, approver(item_id, anna.id), rejecter(item_id, boris.id))
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], Conflict) and errors[0].status_code == 409
        final = session.get(Submission, item_id, populate_existing=True)
        assert final is not None
        winner_is_approve = not isinstance(results[0], Exception)
        assert final.status == (S.approved if winner_is_approve else S.rejected)
        assert audit_count(session, item_id) == 1


def test_two_approvals_one_audit_row(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    anna, boris = make_user(session), make_user(session)
    item = make_submission(session, campaign)
    item_id = int(item.id or 0)
    results = race(engine, approver(item_id, anna.id), approver(item_id, boris.id))
    assert sum(isinstance(r, Conflict) for r in results) == 1
    assert audit_count(session, item_id) == 1


def test_bulk_against_single_decisions(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    anna, boris = make_user(session), make_user(session)
    items = [int(make_submission(session, campaign).id or 0) for _ in range(20)]
    results = race(
        engine,
        lambda s: moderation_bulk.bulk(session=s, ids=items, action="approve", actor_id=anna.id),
        lambda s: [_try(lambda: rejecter(i, boris.id)(s)) for i in items[::2]],  # noqa: B023
    )
    bulk_result = results[0]
    assert isinstance(bulk_result, moderation_bulk.BulkResult), results
    for item_id in items:
        final = session.get(Submission, item_id, populate_existing=True)
        assert final is not None and final.status in (S.approved, S.rejected)
        assert audit_count(session, item_id) == 1
        assert (item_id in bulk_result.done) == (final.status == S.approved)


def _try(call: Callable[[], object]) -> object:
    try:
        return call()
    except Conflict as exc:
        return exc


def test_two_queues_never_share_items(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    anna, boris = make_user(session), make_user(session)
    for _ in range(30):
        make_submission(session, campaign, media=0)
    pages = race(
        engine,
        lambda s: queue_page(s, user_id=int(anna.id or 0), filters=QueueFilters(), size=10),
        lambda s: queue_page(s, user_id=int(boris.id or 0), filters=QueueFilters(), size=10),
    )
    ids = [[c.submission.id for c in page.cards] for page in pages]  # type: ignore[attr-defined]
    assert len(ids[0]) == len(ids[1]) == 10
    assert not set(ids[0]) & set(ids[1])
    claimed = session.exec(
        select(Submission.claimed_by_id).where(col(Submission.claimed_by_id).is_not(None))
    ).all()
    assert len(claimed) == 20
