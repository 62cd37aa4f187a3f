"""Live control of an event's screens, and exports started from the event page.

``/admin/events/{id}/control``: blank all screens, pause/resume, next/previous, jump to a
pinned photo, start the moment of silence, and the list of connected screens with their last
heartbeat and what each shows. The buttons are plain forms; hosts.js sends them with fetch
(``Accept: application/json``) so the page does not reload, and refreshes the screen list.
Exports run in a background thread; the event page polls their progress.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from aggregator.deps import SessionDep
from aggregator.errors import NotFound
from aggregator.i18n import N_
from aggregator.models import Event, ExportJob, User
from aggregator.services.exports import (
    EXTENSIONS,
    FORMATS,
    MEDIA_TYPES,
    job_path,
    start_export_job,
)
from aggregator.services.slideshows import Slide, build_slides
from aggregator.services.slideshows_control import (
    ACTIONS,
    apply_control,
    control_state,
    event_screens,
)
from aggregator.web.auth import HostUser
from aggregator.web.csrf import require_csrf_form
from aggregator.web.routes.hosts import HEADERS, event_for
from aggregator.web.templating import gettext, render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]
# At most this many pinned photos are offered to jump to.
PINNED_LIMIT = 24


def _thumb(request: Request, slide: Slide) -> str:
    key = slide.keys.get("thumb") or slide.keys["slide"]
    return str(request.url_for("media", key=key).path)


def control_data(session: Session, request: Request, event: Event) -> dict[str, Any]:
    """The control state, the pinned photos and every screen, as JSON-ready data."""
    slides = build_slides(session=session, event=event)
    by_id = {s.id: s for s in slides}
    screens = []
    for screen in event_screens(session=session, event_id=event.id or 0):
        slide = by_id.get(screen.showing or "")
        screens.append(
            {
                "id": screen.id,
                "label": screen.label,
                "layout": screen.layout,
                "showing": screen.showing,
                "showing_name": slide.name if slide else "",
                "thumb": _thumb(request, slide) if slide else None,
                "last_seen_at": screen.last_seen_at.isoformat(),
                "connected": screen.connected,
            }
        )
    pinned = [
        {"id": s.id, "name": s.name, "city": s.city, "thumb": _thumb(request, s)}
        for s in slides
        if s.pinned
    ][:PINNED_LIMIT]
    return {
        "control": control_state(event),
        "screens": screens,
        "pinned": pinned,
        "photos": len(slides),
    }


@router.get("/admin/events/{event_id}/control", name="host_control")
def control_page(event_id: int, request: Request, session: SessionDep, user: HostUser) -> Response:
    """The host's remote control for every screen of the event."""
    event = event_for(session, user, event_id)
    return render(
        request,
        "hosts/control.html",
        {"event": event, **control_data(session, request, event)},
        headers=HEADERS,
    )


@router.get("/admin/events/{event_id}/control.json", name="host_control_json")
def control_json(event_id: int, request: Request, session: SessionDep, user: HostUser) -> Response:
    """The same data as the control page, for its periodic refresh."""
    event = event_for(session, user, event_id)
    return JSONResponse(control_data(session, request, event), headers=HEADERS)


@router.post("/admin/events/{event_id}/control", name="host_control_action")
def control_action(
    event_id: int,
    request: Request,
    session: SessionDep,
    user: HostUser,
    _csrf: CsrfChecked,
    action: Annotated[str, Form(max_length=20)],
    item: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """Apply one action to every screen of the event (they follow within seconds)."""
    event = event_for(session, user, event_id)
    if action not in ACTIONS:
        raise NotFound("There is no such action.")
    state = apply_control(session=session, event_id=event.id or 0, action=action, item=item)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"control": state}, headers=HEADERS)
    return RedirectResponse(f"/admin/events/{event.id}/control", status_code=303, headers=HEADERS)


@router.post("/admin/events/{event_id}/exports", name="host_export_start")
def export_start(
    event_id: int,
    request: Request,
    session: SessionDep,
    user: HostUser,
    _csrf: CsrfChecked,
    format: Annotated[str, Form(max_length=20)],
) -> Response:
    """Start an export in the background; the event page shows its progress."""
    event = event_for(session, user, event_id)
    if format not in FORMATS:
        raise NotFound("There is no such export.")
    state = request.app.state
    job = start_export_job(
        session=session,
        engine=state.engine,
        storage=state.storage,
        settings=state.settings,
        event=event,
        fmt=format,
    )
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(_job_json(request, job), status_code=202, headers=HEADERS)
    return RedirectResponse(f"/admin/events/{event.id}#exports", status_code=303, headers=HEADERS)


def _job(session: Session, user: User, event_id: int, job_id: int) -> tuple[Event, ExportJob]:
    event = event_for(session, user, event_id)
    job = session.get(ExportJob, job_id)
    if job is None or job.event_id != event.id:
        raise NotFound("There is no such export.")
    return event, job


def _job_json(request: Request, job: ExportJob) -> dict[str, Any]:
    done = job.status == "done" and job.storage_key is not None
    return {
        "id": job.id,
        "format": job.format,
        "status": job.status,
        "label": gettext(request, STATUS_LABELS.get(job.status, job.status)),
        "progress": round(job.progress, 3),
        "error": gettext(request, job.error) if job.error else None,
        "download": f"/admin/events/{job.event_id}/exports/{job.id}/download" if done else None,
    }


STATUS_LABELS = {
    "queued": N_("Waiting to start"),
    "running": N_("Working…"),
    "done": N_("Ready"),
    "failed": N_("Failed"),
}


@router.get("/admin/events/{event_id}/exports/{job_id}.json", name="host_export_status")
def export_status(
    event_id: int, job_id: int, request: Request, session: SessionDep, user: HostUser
) -> Response:
    """Progress of one export job."""
    _event, job = _job(session, user, event_id, job_id)
    return JSONResponse(_job_json(request, job), headers=HEADERS)


@router.get("/admin/events/{event_id}/exports/{job_id}/download", name="host_export_download")
def export_download(
    event_id: int, job_id: int, request: Request, session: SessionDep, user: HostUser
) -> Response:
    """The finished export as a download."""
    event, job = _job(session, user, event_id, job_id)
    path = job_path(request.app.state.settings, job) if job.status == "done" else None
    if path is None:
        raise NotFound("This export is not ready or no longer kept.")
    suffix = EXTENSIONS[job.format]
    filename = f"event-{event.id}-{job.format}{suffix}"
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[suffix],
        filename=filename,
        headers=HEADERS,
    )
