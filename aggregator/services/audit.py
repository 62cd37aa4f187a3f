"""The audit trail: one append-only row per action, written in the caller's transaction.

Every module that changes something a person may later ask about (moderation decisions,
edits, takedowns, account and source administration) records it through ``audit``.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Insert, insert
from sqlmodel import Session

from aggregator.models import AuditEntry, utcnow

MAX_REASON = 1000


@functools.cache
def _audit_statement() -> Insert:
    return insert(AuditEntry.__table__)  # type: ignore[attr-defined]


def audit(
    session: Session,
    *,
    action: str,
    submission_id: int | None = None,
    actor_id: int | None = None,
    actor_label: str = "",
    reason: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in the current transaction (the caller commits).

    A plain INSERT rather than ``session.add``: the unit of work's flush machinery was the
    largest single cost of an approval, and nothing reads the row back in the same request.
    Pending ORM changes are flushed first, so the row may refer to a submission just added.
    """
    session.flush()
    session.execute(
        _audit_statement(),
        {
            "submission_id": submission_id,
            "actor_id": actor_id,
            "actor_label": actor_label[:100],
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "reason": reason[:MAX_REASON],
            "detail": detail or {},
            "at": utcnow(),
        },
    )
