"""JSON moderation API for moderators: the session cookie plus an ``X-CSRF-Token`` header.

The queue page's keyboard script uses exactly these endpoints, so the API and the web UI can
never disagree. Errors follow the project's shape: ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from aggregator.deps import SessionDep
from aggregator.media.storage import Storage
from aggregator.models import MediaAsset, Submission, SubmissionStatus, User
from aggregator.services import (
    moderation,
    moderation_bulk,
    moderation_edit,
    moderation_queue,
    takedown,
)
from aggregator.services.ingest import media_limits
from aggregator.web.auth import ModeratorUser
from aggregator.web.csrf import check_csrf
from aggregator.web.responses import json_response

router = APIRouter(prefix="/api/v1", tags=["moderation"])
# Database ids are 32-bit on PostgreSQL; larger numbers are refused here, not by the driver.
MAX_ID = 2**31 - 1
DbId = Annotated[int, Path(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]


async def require_csrf_header(request: Request) -> None:
    """State-changing API calls must echo the CSRF cookie in ``X-CSRF-Token``."""
    check_csrf(request, request.headers.get("x-csrf-token"))


CsrfHeader = Depends(require_csrf_header)


class SubmissionOut(BaseModel):
    """A submission as moderators see it in API answers."""

    id: int
    status: SubmissionStatus
    text: str
    author_name: str
    language: str | None
    flags: list[str]
    pinned: bool
    needs_second_approval: bool = False
    awaiting_second_approval: bool = False
    images: list[dict[str, Any]] = Field(default_factory=list)


class ReasonIn(BaseModel):
    """An optional reason kept in the audit."""

    reason: str = Field("", max_length=1000)


class BulkIn(BaseModel):
    """A bulk decision on selected items."""

    ids: list[BodyId] = Field(min_length=1, max_length=moderation.BULK_MAX)
    action: Literal["approve", "reject"]
    reason: str = Field("", max_length=1000)


class BulkOut(BaseModel):
    """What a bulk decision did, id by id."""

    done: list[int]
    first_approvals: list[int]
    conflicts: dict[int, str]


class EditIn(BaseModel):
    """Fields to change; omitted ones stay as they are."""

    text: str | None = Field(None, max_length=moderation_edit.MAX_TEXT)
    author_name: str | None = Field(None, max_length=moderation_edit.MAX_CREDIT)
    alt_texts: dict[BodyId, Annotated[str, Field(max_length=moderation_edit.MAX_ALT)]] | None = None


class RotateIn(BaseModel):
    """Clockwise rotation; all images of the item unless ``position`` is given."""

    degrees: Literal[90, 180, 270]
    position: int | None = Field(None, ge=0, le=100)


class PinIn(BaseModel):
    """Pin or unpin."""

    pinned: bool = True


class ClaimsIn(BaseModel):
    """Items still on the moderator's screen."""

    ids: list[BodyId] = Field(max_length=500)


def actor_label(user: User) -> str:
    """How the audit names a person."""
    return user.display_name or user.email


def out(
    submission: Submission,
    *,
    needs_second: bool = False,
    assets: list[MediaAsset] | None = None,
) -> SubmissionOut:
    """Serialise one submission for the API."""
    return SubmissionOut(
        id=int(submission.id or 0),
        status=SubmissionStatus(submission.status),
        text=submission.text,
        author_name=submission.author_name,
        language=submission.language,
        flags=list(submission.flags or []),
        pinned=submission.pinned_at is not None,
        needs_second_approval=needs_second,
        awaiting_second_approval=submission.first_approved_by_id is not None
        and SubmissionStatus(submission.status) == SubmissionStatus.pending,
        images=[
            {
                "id": a.id,
                "position": a.position,
                "width": a.width,
                "height": a.height,
                "alt_text": a.alt_text,
                "keys": dict(a.keys or {}),
            }
            for a in assets or []
        ],
    )


def _storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


@router.get("/moderation/queue", response_model=list[SubmissionOut])
def api_queue(
    session: SessionDep,
    user: ModeratorUser,
    status: SubmissionStatus = SubmissionStatus.pending,
    campaign: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    source: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    flag: Annotated[
        str | None, Query(pattern="^(" + "|".join(moderation_queue.FLAG_FILTERS) + ")$")
    ] = None,
    language: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = moderation_queue.PAGE_SIZE,
) -> Response:
    """One page of the queue, oldest first (pending items are claimed for you)."""
    filters = moderation_queue.QueueFilters(
        status=status,
        campaign_id=campaign,
        source_id=source,
        flag=flag,
        language=language,
        after=after,
    )
    page = moderation_queue.queue_page(
        session, user_id=int(user.id or 0), filters=filters, size=limit
    )
    return json_response([out(card.submission, assets=card.assets) for card in page.cards])


@router.post(
    "/submissions/{submission_id}/approve", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_approve(submission_id: DbId, session: SessionDep, user: ModeratorUser) -> Response:
    """Approve (or give the first of two approvals for a flagged item)."""
    decision = moderation.approve(
        session=session,
        submission_id=submission_id,
        actor_id=user.id,
        actor_label=actor_label(user),
    )
    return json_response(out(decision.submission, needs_second=decision.needs_second_approval))


@router.post(
    "/submissions/{submission_id}/reject", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_reject(
    submission_id: DbId, session: SessionDep, user: ModeratorUser, body: ReasonIn | None = None
) -> Response:
    """Reject a pending item, with an optional reason."""
    submission = moderation.transition(
        session=session,
        submission_id=submission_id,
        to=SubmissionStatus.rejected,
        actor_id=user.id,
        actor_label=actor_label(user),
        reason=moderation.clean_reason(body.reason if body else ""),
    )
    return json_response(out(submission))


@router.post(
    "/submissions/{submission_id}/undo", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_undo(submission_id: DbId, session: SessionDep, user: ModeratorUser) -> Response:
    """Undo a rejection: the item is pending again."""
    submission = moderation.transition(
        session=session,
        submission_id=submission_id,
        to=SubmissionStatus.pending,
        actor_id=user.id,
        actor_label=actor_label(user),
        reason="undo",
        expected=SubmissionStatus.rejected,
    )
    return json_response(out(submission))


@router.post(
    "/submissions/{submission_id}/remove", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_remove(
    submission_id: DbId,
    request: Request,
    session: SessionDep,
    user: ModeratorUser,
    body: ReasonIn | None = None,
) -> Response:
    """Take an approved item down everywhere and delete its image files."""
    submission = takedown.take_down(
        session=session,
        storage=_storage(request),
        submission_id=submission_id,
        actor_id=user.id,
        actor_label=actor_label(user),
        reason=body.reason if body else "",
    )
    return json_response(out(submission))


@router.post("/submissions/bulk", response_model=BulkOut, dependencies=[CsrfHeader])
def api_bulk(body: BulkIn, session: SessionDep, user: ModeratorUser) -> Response:
    """Approve or reject many items; items someone else decided are listed as conflicts."""
    result = moderation_bulk.bulk(
        session=session,
        ids=body.ids,
        action=body.action,
        actor_id=user.id,
        actor_label=actor_label(user),
        reason=body.reason,
    )
    return json_response(
        BulkOut(
            done=result.done, first_approvals=result.first_approvals, conflicts=result.conflicts
        )
    )


@router.post(
    "/submissions/{submission_id}/edit", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_edit(
    submission_id: DbId, body: EditIn, session: SessionDep, user: ModeratorUser
) -> Response:
    """Change the caption, the credit and/or image descriptions."""
    submission = moderation_edit.edit(
        session=session,
        submission_id=submission_id,
        actor_id=user.id,
        actor_label=actor_label(user),
        text=body.text,
        author_name=body.author_name,
        alt_texts=body.alt_texts,
    )
    return json_response(out(submission))


@router.post(
    "/submissions/{submission_id}/rotate", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_rotate(
    submission_id: DbId, body: RotateIn, request: Request, session: SessionDep, user: ModeratorUser
) -> Response:
    """Turn the item's images clockwise; new image URLs are returned."""
    assets = moderation_edit.rotate(
        session=session,
        storage=_storage(request),
        submission_id=submission_id,
        degrees=body.degrees,
        position=body.position,
        actor_id=user.id,
        actor_label=actor_label(user),
        limits=media_limits(request.app.state.settings),
    )
    submission = session.get(Submission, submission_id)
    assert submission is not None
    return json_response(out(submission, assets=assets))


@router.post(
    "/submissions/{submission_id}/pin", response_model=SubmissionOut, dependencies=[CsrfHeader]
)
def api_pin(
    submission_id: DbId, session: SessionDep, user: ModeratorUser, body: PinIn | None = None
) -> Response:
    """Pin an item so slideshows show it next (or unpin it)."""
    submission = moderation_edit.pin(
        session=session,
        submission_id=submission_id,
        pinned=body.pinned if body else True,
        actor_id=user.id,
        actor_label=actor_label(user),
    )
    return json_response(out(submission))


@router.post("/moderation/claims", dependencies=[CsrfHeader])
def api_renew_claims(
    body: ClaimsIn, session: SessionDep, user: ModeratorUser
) -> dict[str, list[int]]:
    """Keep the items on your screen reserved for you a few minutes longer."""
    renewed = moderation_queue.renew_claims(session, user_id=int(user.id or 0), ids=body.ids)
    return {"renewed": renewed}
