"""The moderation queue: filtered keyset pages, and short claims so that two moderators never
review the same pending item at once.

Showing a page of pending items claims them for ``CLAIM_SECONDS`` in one statement
(``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING id`` on PostgreSQL;
the same statement without the lock clause on SQLite, where writers are serialised anyway).
Other moderators' pages skip claimed items; a decision or expiry releases the claim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import String, cast, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from aggregator.models import (
    Campaign,
    MediaAsset,
    Source,
    Submission,
    SubmissionStatus,
    User,
    utcnow,
)

PAGE_SIZE = 20
CLAIM_SECONDS = 300
FLAG_FILTERS = ("any", "near_duplicate", "sensitive", "rule", "second_approval", "none")
ORDERS = ("oldest", "newest")


@dataclass(frozen=True)
class QueueFilters:
    """What the moderator asked to see; ``after``/``before`` are keyset cursors (ids)."""

    status: SubmissionStatus = SubmissionStatus.pending
    campaign_id: int | None = None
    source_id: int | None = None
    flag: str | None = None
    language: str | None = None
    order: str = "oldest"
    after: int | None = None
    before: int | None = None

    def query_args(self, **change: Any) -> dict[str, str]:
        """These filters as URL query arguments (cursors replaced by ``change``)."""
        values: dict[str, Any] = {
            "status": self.status.value,
            "campaign": self.campaign_id,
            "source": self.source_id,
            "flag": self.flag,
            "language": self.language,
            "order": self.order if self.order != "oldest" else None,
            **change,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


@dataclass
class Card:
    """One submission as the queue shows it."""

    submission: Submission
    assets: list[MediaAsset] = field(default_factory=list)
    # asset id → (the earlier asset it resembles, that asset's submission)
    duplicates: dict[int, tuple[MediaAsset, Submission]] = field(default_factory=dict)
    source: Source | None = None
    first_approver: User | None = None


@dataclass
class QueuePage:
    """One page of cards with the cursors to the neighbouring pages."""

    cards: list[Card]
    next_after: int | None
    prev_before: int | None


def _flag_condition(flag: str, user_id: int | None) -> ColumnElement[bool]:
    flags_text = cast(col(Submission.flags), String)
    if flag == "near_duplicate":
        return flags_text.like('%"near_duplicate"%')
    if flag == "sensitive":
        return or_(col(Submission.sensitive).is_(True), flags_text.like('%"sensitive"%'))
    if flag == "rule":
        return or_(
            flags_text.like('%"rule:%'),
            flags_text.like('%"blocked_author:%'),
            flags_text.like('%"blocked_instance:%'),
        )
    if flag == "second_approval":
        return col(Submission.first_approved_by_id).is_not(None)
    if flag == "none":
        return or_(flags_text == "[]", col(Submission.flags).is_(None))
    return flags_text != "[]"  # "any"


def _conditions(filters: QueueFilters, user_id: int) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [col(Submission.status) == filters.status]
    if filters.campaign_id is not None:
        conditions.append(col(Submission.campaign_id) == filters.campaign_id)
    if filters.source_id is not None:
        conditions.append(col(Submission.source_id) == filters.source_id)
    if filters.language:
        conditions.append(col(Submission.language) == filters.language)
    if filters.flag in FLAG_FILTERS:
        conditions.append(_flag_condition(filters.flag, user_id))
    if filters.status == SubmissionStatus.pending:
        now = utcnow()
        conditions.append(
            or_(
                col(Submission.claimed_until).is_(None),
                col(Submission.claimed_until) < now,
                col(Submission.claimed_by_id) == user_id,
            )
        )
        # Whoever gave the first of two approvals leaves the item to someone else.
        conditions.append(
            or_(
                col(Submission.first_approved_by_id).is_(None),
                col(Submission.first_approved_by_id) != user_id,
            )
        )
    return conditions


def _page_rows(
    session: Session, filters: QueueFilters, user_id: int, size: int
) -> list[Submission]:
    """The page's submissions in display order; pending pages are claimed by the same
    statement, which also returns the rows (one round trip)."""
    conditions = _conditions(filters, user_id)
    ascending = filters.order != "newest"
    backwards = filters.before is not None and filters.after is None
    if filters.after is not None:
        conditions.append(
            col(Submission.id) > filters.after if ascending else col(Submission.id) < filters.after
        )
    elif filters.before is not None:
        conditions.append(
            col(Submission.id) < filters.before
            if ascending
            else col(Submission.id) > filters.before
        )
    forward = ascending != backwards
    order = col(Submission.id).asc() if forward else col(Submission.id).desc()
    if filters.status == SubmissionStatus.pending:
        until = utcnow() + timedelta(seconds=CLAIM_SECONDS)
        wanted = select(Submission.id).where(*conditions).order_by(order).limit(size)
        claimed = session.scalars(
            update(Submission)
            .where(col(Submission.id).in_(wanted.with_for_update(skip_locked=True)))
            .values(claimed_by_id=user_id, claimed_until=until)
            .returning(Submission)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        rows = list(claimed.all())
        session.commit()
        rows.sort(key=lambda row: row.id or 0, reverse=not ascending)
        return rows
    query = (
        select(Submission)
        .where(*conditions)
        .order_by(order)
        .limit(size)
        .execution_options(populate_existing=True)
    )
    rows = list(session.exec(query).all())
    return rows if not backwards else rows[::-1]


def queue_page(
    session: Session,
    *,
    user_id: int,
    filters: QueueFilters,
    size: int = PAGE_SIZE,
    sources: dict[int, Source] | None = None,
) -> QueuePage:
    """Load (and for pending items, claim) one page of the queue with everything cards show.

    ``sources`` may pass sources already loaded (the page has them for its filter menu).
    A full page always offers a next page; it may turn out empty, which is cheaper than
    asking the database first.
    """
    rows = _page_rows(session, filters, user_id, size)
    if not rows:
        session.commit()
        return QueuePage([], None, filters.after if filters.before is None else None)
    cards = [Card(row) for row in rows]
    ids = [int(row.id or 0) for row in rows]
    by_id = {card.submission.id: card for card in cards}
    assets = session.exec(
        select(MediaAsset)
        .where(col(MediaAsset.submission_id).in_(ids))
        .order_by(col(MediaAsset.submission_id), col(MediaAsset.position))
    ).all()
    for asset in assets:
        by_id[asset.submission_id].assets.append(asset)
    _attach_duplicates(session, cards)
    _attach_sources_and_approvers(session, cards, sources)
    session.commit()  # end the read transaction (SQLite snapshots must not linger)
    backwards = filters.before is not None and filters.after is None
    full = len(rows) == size
    next_after = ids[-1] if (full or backwards) else None
    prev_before = ids[0] if (filters.after is not None or (backwards and full)) else None
    return QueuePage(cards, next_after, prev_before)


def _attach_duplicates(session: Session, cards: list[Card]) -> None:
    wanted = {a.duplicate_of_id for c in cards for a in c.assets if a.duplicate_of_id}
    if not wanted:
        return
    originals = {
        a.id: a for a in session.exec(select(MediaAsset).where(col(MediaAsset.id).in_(wanted)))
    }
    owners = {
        s.id: s
        for s in session.exec(
            select(Submission).where(
                col(Submission.id).in_({a.submission_id for a in originals.values()})
            )
        )
    }
    for card in cards:
        for asset in card.assets:
            original = originals.get(asset.duplicate_of_id) if asset.duplicate_of_id else None
            if original is not None and original.submission_id in owners and asset.id:
                card.duplicates[asset.id] = (original, owners[original.submission_id])


def _attach_sources_and_approvers(
    session: Session, cards: list[Card], sources: dict[int, Source] | None
) -> None:
    if sources is None:
        source_ids = {c.submission.source_id for c in cards if c.submission.source_id}
        sources = (
            {
                int(s.id or 0): s
                for s in session.exec(select(Source).where(col(Source.id).in_(source_ids)))
            }
            if source_ids
            else {}
        )
    approver_ids = {
        c.submission.first_approved_by_id for c in cards if c.submission.first_approved_by_id
    }
    approvers = (
        {u.id: u for u in session.exec(select(User).where(col(User.id).in_(approver_ids)))}
        if approver_ids
        else {}
    )
    for card in cards:
        card.source = sources.get(card.submission.source_id) if card.submission.source_id else None
        if card.submission.first_approved_by_id:
            card.first_approver = approvers.get(card.submission.first_approved_by_id)


def renew_claims(session: Session, *, user_id: int, ids: list[int]) -> list[int]:
    """Extend this moderator's claims on items still on their screen; returns those renewed."""
    if not ids:
        return []
    until = utcnow() + timedelta(seconds=CLAIM_SECONDS)
    result = session.execute(
        update(Submission)
        .where(
            col(Submission.id).in_(ids[:500]),
            col(Submission.claimed_by_id) == user_id,
            col(Submission.status) == SubmissionStatus.pending,
        )
        .values(claimed_until=until)
        .returning(col(Submission.id))
        .execution_options(synchronize_session=False)
    )
    renewed = [int(i) for i in result.scalars().all()]
    session.commit()
    return renewed


def release_claims(session: Session, *, user_id: int) -> None:
    """Give back every claim of one moderator (logout, or leaving the queue)."""
    session.execute(
        update(Submission)
        .where(col(Submission.claimed_by_id) == user_id)
        .values(claimed_by_id=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def filter_choices(session: Session) -> dict[str, Any]:
    """Campaigns and sources for the filter menus (small tables); ``source_rows`` by id."""
    campaigns = session.exec(select(Campaign.id, Campaign.name).order_by(col(Campaign.id))).all()
    sources = session.exec(select(Source).order_by(col(Source.id))).all()
    return {
        "campaigns": [(int(i), name) for i, name in campaigns if i is not None],
        "sources": [(int(s.id or 0), s.name or s.kind, s.campaign_id) for s in sources],
        "source_rows": {int(s.id or 0): s for s in sources},
    }
