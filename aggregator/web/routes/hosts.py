"""Event pages for hosts: the list, a new event, its settings, share links and hosts.

Admins and moderators reach every event; a host only the events assigned to them (another
event is a 404, not a 403, so its existence does not leak). Control and exports live in
``hosts_control.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, UploadFile
from pydantic import BaseModel
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.config import LANGUAGE_CODES
from aggregator.deps import SessionDep
from aggregator.errors import InvalidInput, NotFound
from aggregator.i18n import LANGUAGE_NAMES, N_
from aggregator.media import ImageRejected, process_image
from aggregator.models import (
    Campaign,
    Event,
    EventHost,
    ExportJob,
    Role,
    ShareLink,
    Source,
    User,
    utcnow,
)
from aggregator.services.events import create_event, new_share_token, share_url
from aggregator.services.ingest import media_limits
from aggregator.services.slideshows_settings import (
    CAPTION_LABELS,
    ORDER_LABELS,
    THEME_LABELS,
    TRANSITION_LABELS,
    effective_settings,
    parse_settings_form,
)
from aggregator.web.auth import HostUser, ModeratorUser, accessible_event_ids, can_access_event
from aggregator.web.csrf import require_csrf_form
from aggregator.web.templating import render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]
HEADERS = {"Cache-Control": "private, no-store"}
LAYOUTS = ("slideshow", "wall")
MAX_LINK_DAYS = 366


def event_for(session: Session, user: User, event_id: int) -> Event:
    """The event if this user may manage it, else NotFound."""
    event = session.get(Event, event_id)
    if event is None or not can_access_event(user, event, session):
        raise NotFound("There is no such event.")
    return event


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


@router.get("/admin/events", name="host_events")
def events_list(request: Request, session: SessionDep, user: HostUser) -> Response:
    """The events this user may manage, newest first."""
    query = select(Event, Campaign).join(Campaign, col(Campaign.id) == col(Event.campaign_id))
    allowed = accessible_event_ids(user, session)
    if allowed is not None:
        query = query.where(col(Event.id).in_(allowed or [-1]))
    rows = session.exec(query.order_by(col(Event.created_at).desc())).all()
    return render(
        request,
        "hosts/events.html",
        {"rows": rows, "can_create": Role(user.role) != Role.host},
        headers=HEADERS,
    )


def _campaigns(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).order_by(col(Campaign.created_at).desc())).all())


@router.get("/admin/events/new", name="host_event_new")
def event_new(request: Request, session: SessionDep, user: ModeratorUser) -> Response:
    """The new-event form."""
    return render(
        request,
        "hosts/event_new.html",
        {"campaigns": _campaigns(session), "form": {}},
        headers=HEADERS,
    )


def parse_start(value: str) -> datetime | None:
    """A ``datetime-local`` value taken as UTC, or None; InvalidInput otherwise."""
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(N_("Please enter a date and time."), field="starts_at") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/admin/events/new", name="host_event_create")
def event_create(
    request: Request,
    session: SessionDep,
    user: ModeratorUser,
    _csrf: CsrfChecked,
    campaign_id: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    starts_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Create an event with default settings and a first share link; show its page."""
    form = {"campaign_id": campaign_id, "name": name, "starts_at": starts_at}
    try:
        campaign = session.get(Campaign, int(campaign_id)) if campaign_id.isdigit() else None
        if campaign is None:
            raise InvalidInput(N_("Please choose a campaign."), field="campaign_id")
        event, _link = create_event(
            session=session, campaign=campaign, name=name, starts_at=parse_start(starts_at)
        )
    except InvalidInput as exc:
        return render(
            request,
            "hosts/event_new.html",
            {"campaigns": _campaigns(session), "form": form, "error": exc},
            status_code=422,
            headers=HEADERS,
        )
    return _see_other(f"/admin/events/{event.id}?saved=1")


def event_context(session: Session, request: Request, user: User, event: Event) -> dict[str, Any]:
    """Everything the event page shows."""
    settings = request.app.state.settings
    links = session.exec(
        select(ShareLink).where(ShareLink.event_id == event.id).order_by(col(ShareLink.id))
    ).all()
    jobs = session.exec(
        select(ExportJob)
        .where(ExportJob.event_id == event.id)
        .order_by(col(ExportJob.id).desc())
        .limit(10)
    ).all()
    hosts = session.exec(
        select(User)
        .join(EventHost, col(EventHost.user_id) == col(User.id))
        .where(EventHost.event_id == event.id)
    ).all()
    campaigns = _campaigns(session)
    show = effective_settings(event)
    return {
        "event": event,
        "campaign": next((c for c in campaigns if c.id == event.campaign_id), None),
        "campaigns": campaigns,
        "sources": session.exec(
            select(Source).where(Source.campaign_id == event.campaign_id)
        ).all(),
        "show": show,
        "links": [
            (link, share_url(settings.public_base_url, link), _link_state(link)) for link in links
        ],
        "jobs": jobs,
        "hosts": hosts,
        "is_admin": Role(user.role) == Role.admin,
        "labels": {
            "order": ORDER_LABELS,
            "transition": TRANSITION_LABELS,
            "captions": CAPTION_LABELS,
            "theme": THEME_LABELS,
        },
        "language_choices": [(c, LANGUAGE_NAMES[c]) for c in LANGUAGE_CODES],
        "saved": request.query_params.get("saved") == "1",
    }


def _link_state(link: ShareLink) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= utcnow():
        return "expired"
    return "active"


@router.get("/admin/events/{event_id}", name="host_event")
def event_page(event_id: int, request: Request, session: SessionDep, user: HostUser) -> Response:
    """Settings, share links, exports and hosts of one event."""
    event = event_for(session, user, event_id)
    return render(
        request,
        "hosts/event.html",
        event_context(session, request, user, event),
        headers=HEADERS,
    )


class SettingsForm(BaseModel):
    """The fields of the event settings form (validated by ``parse_settings_form``)."""

    name: str = ""
    starts_at: str = ""
    interval: str = ""
    order: str = ""
    transition: str = ""
    captions: list[str] = []
    theme: str = ""
    qr_every: str = ""
    intro_title: str = ""
    intro_text: str = ""
    closing_title: str = ""
    closing_text: str = ""
    silence_seconds: str = ""
    silence_slide: str = ""
    language: str = ""
    extra_campaigns: list[str] = []
    filter_sources: list[str] = []
    filter_cities: str = ""
    filter_languages: str = ""
    date_from: str = ""
    date_to: str = ""
    remove_logo: str = ""
    logo: UploadFile | None = None


@router.post("/admin/events/{event_id}", name="host_event_save")
def event_save(
    event_id: int,
    request: Request,
    session: SessionDep,
    user: HostUser,
    _csrf: CsrfChecked,
    form: Annotated[SettingsForm, Form()],
) -> Response:
    """Validate and save the settings; on a mistake show the form again with the field named."""
    event = event_for(session, user, event_id)
    sources = {s.id for s in session.exec(select(Source)).all() if s.id is not None}
    campaigns = {c.id for c in session.exec(select(Campaign)).all() if c.id is not None}
    try:
        if not form.name.strip():
            raise InvalidInput(N_("The event needs a name."), field="name")
        new = parse_settings_form(
            form.model_dump(exclude={"logo"}),
            current=effective_settings(event),
            source_ids=sources,
            campaign_ids=campaigns - {event.campaign_id},
        )
        starts = parse_start(form.starts_at)
        if form.remove_logo:
            new["logo"] = None
        if form.logo is not None and form.logo.filename:
            new["logo"] = _store_logo(request, form.logo)
    except InvalidInput as exc:
        context = event_context(session, request, user, event)
        context.update({"error": exc, "show": {**context["show"], **_echo(form)}})
        return render(request, "hosts/event.html", context, status_code=422, headers=HEADERS)
    event.name = form.name.strip()[:200]
    event.starts_at = starts
    event.settings = new
    session.add(event)
    session.commit()
    return _see_other(f"/admin/events/{event.id}?saved=1")


def _echo(form: SettingsForm) -> dict[str, Any]:
    """What the host typed, so a rejected form keeps it."""
    return {
        "intro": {"title": form.intro_title, "text": form.intro_text},
        "closing": {"title": form.closing_title, "text": form.closing_text},
    }


def _store_logo(request: Request, upload: UploadFile) -> str:
    data = upload.file.read(request.app.state.settings.upload_max_bytes + 1)
    try:
        processed = process_image(data, limits=media_limits(request.app.state.settings))
    except ImageRejected as exc:
        raise InvalidInput(exc.message, field="logo") from None
    thumb = processed.derivatives["thumb"]
    return str(request.app.state.storage.put(thumb.data, suffix=".jpg"))


@router.post("/admin/events/{event_id}/links", name="host_link_create")
def link_create(
    event_id: int,
    session: SessionDep,
    user: HostUser,
    _csrf: CsrfChecked,
    layout: Annotated[str, Form(max_length=20)] = "slideshow",
    days: Annotated[str, Form(max_length=5)] = "7",
) -> Response:
    """A new share link (slideshow or wall) that expires after ``days`` (0: never)."""
    event = event_for(session, user, event_id)
    if layout not in LAYOUTS:
        raise InvalidInput(N_("Please choose a layout."), field="layout")
    if not days.strip().isdigit() or int(days) > MAX_LINK_DAYS:
        raise InvalidInput(N_("Please enter a number of days from 0 to 366."), field="days")
    expires = utcnow() + timedelta(days=int(days)) if int(days) else None
    session.add(
        ShareLink(
            event_id=event.id or 0, token=new_share_token(), layout=layout, expires_at=expires
        )
    )
    session.commit()
    return _see_other(f"/admin/events/{event.id}#links")


@router.post("/admin/events/{event_id}/links/{link_id}/revoke", name="host_link_revoke")
def link_revoke(
    event_id: int, link_id: int, session: SessionDep, user: HostUser, _csrf: CsrfChecked
) -> Response:
    """Revoke a share link: its screens go dark on their next check."""
    event = event_for(session, user, event_id)
    link = session.get(ShareLink, link_id)
    if link is None or link.event_id != event.id:
        raise NotFound("There is no such link.")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        session.add(link)
        session.commit()
    return _see_other(f"/admin/events/{event.id}#links")


@router.post("/admin/events/{event_id}/hosts", name="host_add")
def host_add(
    event_id: int,
    session: SessionDep,
    user: HostUser,
    _csrf: CsrfChecked,
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Admins give a host account access to this event."""
    event = event_for(session, user, event_id)
    if Role(user.role) != Role.admin:
        raise NotFound("There is no such page.")
    host = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if host is None or Role(host.role) != Role.host:
        raise InvalidInput(N_("There is no host account with that address."), field="email")
    exists = session.exec(
        select(EventHost).where(EventHost.event_id == event.id, EventHost.user_id == host.id)
    ).first()
    if exists is None:
        session.add(EventHost(event_id=event.id, user_id=host.id))  # type: ignore[arg-type]
        session.commit()
    return _see_other(f"/admin/events/{event.id}#hosts")


@router.post("/admin/events/{event_id}/hosts/{user_id}/remove", name="host_remove")
def host_remove(
    event_id: int, user_id: int, session: SessionDep, user: HostUser, _csrf: CsrfChecked
) -> Response:
    """Admins take a host's access to this event away."""
    event = event_for(session, user, event_id)
    if Role(user.role) != Role.admin:
        raise NotFound("There is no such page.")
    row = session.exec(
        select(EventHost).where(EventHost.event_id == event.id, EventHost.user_id == user_id)
    ).first()
    if row is not None:
        session.delete(row)
        session.commit()
    return _see_other(f"/admin/events/{event.id}#hosts")
