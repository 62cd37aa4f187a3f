"""The moderation queue page, one item's history, and plain-form fallbacks of every action.

With JavaScript the page drives the JSON API (aggregator/web/routes/api_moderation.py) from
the keyboard; without it, each card's buttons post these forms and come back to the queue.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from markupsafe import Markup
from pydantic import Field
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator import i18n
from aggregator.deps import SessionDep
from aggregator.errors import InvalidInput, NotFound
from aggregator.media.storage import PRIVATE_CACHE
from aggregator.models import AuditEntry, MediaAsset, Source, Submission, SubmissionStatus, User
from aggregator.services import (
    moderation,
    moderation_bulk,
    moderation_edit,
    moderation_queue,
    takedown,
)
from aggregator.web.auth import ModeratorUser
from aggregator.web.csrf import require_csrf_form
from aggregator.web.routes.api_moderation import MAX_ID, DbId, actor_label
from aggregator.web.routes.auth import safe_next
from aggregator.web.templating import render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]
ACTIONS = ("approve", "reject", "undo", "remove", "pin", "unpin")
QUEUE_HEADERS = {"Cache-Control": PRIVATE_CACHE}


def static_html(request: Request) -> Markup:
    """The dialogs and script strings of the queue in the request's language.

    They hold no per-request data, so each language is rendered once per process: the
    queue page must stay fast with 100 000 items waiting.
    """
    lang = getattr(request.state, "lang", "en")
    cache: dict[str, Markup] | None = getattr(request.app.state, "moderation_static", None)
    if cache is None:
        cache = request.app.state.moderation_static = {}
    if lang not in cache:
        template = request.app.state.templates.env.get_template("moderation/_dialogs.html")
        cache[lang] = Markup(template.render({"i18n": i18n.translations(lang), "lang": lang}))
    return cache[lang]


def media_prefix(request: Request) -> str:
    """The path of the media route up to the key, resolved once per page, not per image."""
    sample = "00/" + "0" * 30 + ".jpg"
    return str(request.app.url_path_for("media", key=sample))[: -len(sample)]


def _int_or_none(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    if not value.strip().isdigit() or int(value) > MAX_ID:
        raise InvalidInput("Filters take whole numbers.", field="filter")
    return int(value)


@router.get("/moderate", name="moderate")
def queue(
    request: Request,
    session: SessionDep,
    user: ModeratorUser,
    status: SubmissionStatus = SubmissionStatus.pending,
    campaign: Annotated[str | None, Query(max_length=20)] = None,
    source: Annotated[str | None, Query(max_length=20)] = None,
    flag: Annotated[str | None, Query(max_length=30)] = None,
    language: Annotated[str | None, Query(max_length=20)] = None,
    order: Annotated[str, Query(max_length=10)] = "oldest",
    after: Annotated[str | None, Query(max_length=20)] = None,
    before: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The queue: cards, filters, keyset pages; pending cards are claimed for this moderator."""
    filters = moderation_queue.QueueFilters(
        status=status,
        campaign_id=_int_or_none(campaign),
        source_id=_int_or_none(source),
        flag=flag if flag in moderation_queue.FLAG_FILTERS else None,
        language=language or None,
        order=order if order in moderation_queue.ORDERS else "oldest",
        after=_int_or_none(after),
        before=_int_or_none(before),
    )
    choices = moderation_queue.filter_choices(session)
    page = moderation_queue.queue_page(
        session, user_id=int(user.id or 0), filters=filters, sources=choices["source_rows"]
    )
    return render(
        request,
        "moderation/queue.html",
        {
            "page": page,
            "filters": filters,
            "choices": choices,
            "statuses": [s.value for s in SubmissionStatus],
            "flag_filters": moderation_queue.FLAG_FILTERS,
            "here": str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
            "media": media_prefix(request),
            "static_html": static_html(request),
        },
        headers=QUEUE_HEADERS,
    )


@router.get("/moderate/{submission_id}", name="moderate_item")
def item(
    request: Request, session: SessionDep, user: ModeratorUser, submission_id: DbId
) -> Response:
    """One item with its images and full audit history."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound("There is no such item.")
    assets = session.exec(
        select(MediaAsset)
        .where(MediaAsset.submission_id == submission_id)
        .order_by(col(MediaAsset.position))
    ).all()
    history = session.exec(
        select(AuditEntry, User)
        .join(User, col(User.id) == col(AuditEntry.actor_id), isouter=True)
        .where(AuditEntry.submission_id == submission_id)
        .order_by(col(AuditEntry.id))
    ).all()
    source = session.get(Source, submission.source_id) if submission.source_id else None
    return render(
        request,
        "moderation/item.html",
        {"submission": submission, "assets": assets, "history": history, "source": source},
        headers=QUEUE_HEADERS,
    )


@router.post("/moderate/{submission_id}/{action}", name="moderate_action")
def act(
    request: Request,
    session: SessionDep,
    user: ModeratorUser,
    _csrf: CsrfChecked,
    submission_id: DbId,
    action: str,
    reason: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/moderate",
) -> Response:
    """Form fallback for one card's buttons; returns to the queue page it came from."""
    if action not in ACTIONS:
        raise NotFound("There is no such action.")
    label = actor_label(user)
    if action == "approve":
        moderation.approve(
            session=session, submission_id=submission_id, actor_id=user.id, actor_label=label
        )
    elif action in ("reject", "undo"):
        moderation.transition(
            session=session,
            submission_id=submission_id,
            to=SubmissionStatus.rejected if action == "reject" else SubmissionStatus.pending,
            actor_id=user.id,
            actor_label=label,
            reason=moderation.clean_reason(reason) if action == "reject" else "undo",
            expected=SubmissionStatus.rejected if action == "undo" else None,
        )
    elif action == "remove":
        takedown.take_down(
            session=session,
            storage=request.app.state.storage,
            submission_id=submission_id,
            actor_id=user.id,
            actor_label=label,
            reason=reason,
        )
    else:
        moderation_edit.pin(
            session=session,
            submission_id=submission_id,
            pinned=action == "pin",
            actor_id=user.id,
            actor_label=label,
        )
    return RedirectResponse(safe_next(back, "/moderate"), status_code=303)


@router.post("/moderate/bulk", name="moderate_bulk")
def bulk_form(
    session: SessionDep,
    user: ModeratorUser,
    _csrf: CsrfChecked,
    ids: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    action: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/moderate",
) -> Response:
    """Form fallback for the selection: approve or reject every ticked card."""
    moderation_bulk.bulk(
        session=session,
        ids=ids,
        action=action,
        actor_id=user.id,
        actor_label=actor_label(user),
        reason=reason,
    )
    return RedirectResponse(safe_next(back, "/moderate"), status_code=303)
