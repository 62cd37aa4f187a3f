"""Exports of an event: one entry point, one module per format, atomic output files.

``export_event`` selects the photos (``build_slides`` with the format's consent scope:
``projection`` for bundle, pdf, pptx and poster; ``archive`` for the museum package), hands
them to the format's writer with a temporary file next to the target, and renames it into
place only when complete, so a crash or a full disk never leaves a half-written export under
the final name. Export jobs started from the web run ``run_export_job`` in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from aggregator import i18n
from aggregator.config import Settings
from aggregator.errors import AggregatorError, InvalidInput, NotFound
from aggregator.media.storage import Storage
from aggregator.models import Campaign, Event, ExportJob, utcnow
from aggregator.services.campaigns import localized
from aggregator.services.slideshows import Slide, build_slides
from aggregator.services.slideshows_settings import effective_settings

log = logging.getLogger(__name__)

FORMATS: Final = ("bundle", "pdf", "pptx", "poster", "archive")
KEEP_PER_FORMAT: Final = 2  # finished export files kept per event and format
SCOPES: Final = {"archive": "archive"}  # every other format needs "projection" consent
EXTENSIONS: Final = {
    "bundle": ".zip",
    "pdf": ".pdf",
    "pptx": ".pptx",
    "poster": ".pdf",
    "archive": ".zip",
}
MEDIA_TYPES: Final = {
    ".zip": "application/zip",
    ".pdf": "application/pdf",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}

Progress = Callable[[float], None]


@dataclass
class ExportContext:
    """Everything a format writer needs besides the slides."""

    session: Session
    storage: Storage
    settings: Settings
    event: Event
    campaign: Campaign
    lang: str
    progress: Progress

    @property
    def show(self) -> dict[str, Any]:
        """The event's effective slideshow settings."""
        return effective_settings(self.event)

    @property
    def title(self) -> str:
        """The campaign's name in the export's language."""
        return localized(self.campaign, self.lang).name

    def gettext(self, message: str) -> str:
        """Translate into the export's language."""
        return str(i18n.translations(self.lang).gettext(message))

    @property
    def upload_url(self) -> str:
        """Where the QR code leads: the campaign's upload page."""
        return f"{self.settings.public_base_url.rstrip('/')}/c/{self.campaign.slug}"


@dataclass(frozen=True)
class ExportResult:
    """Where the export was written and how many photos it holds."""

    path: Path
    photos: int


Writer = Callable[[ExportContext, list[Slide], Path], None]


def _writer(fmt: str) -> Writer:
    # Imported on demand: reportlab and python-pptx are slow to import and rarely needed.
    if fmt == "bundle":
        from aggregator.services.export_bundle import write_bundle

        return write_bundle
    if fmt == "pdf":
        from aggregator.services.export_pdf import write_pdf

        return write_pdf
    if fmt == "pptx":
        from aggregator.services.export_pptx import write_pptx

        return write_pptx
    if fmt == "poster":
        from aggregator.services.export_poster import write_poster

        return write_poster
    if fmt == "archive":
        from aggregator.services.export_archive import write_archive

        return write_archive
    raise InvalidInput(f"Unknown export format {fmt!r}.", field="format")


def export_lang(event: Event, settings: Settings) -> str:
    """The language of an export's own words: the event's, else the installation default."""
    chosen = effective_settings(event).get("language")
    return str(chosen or settings.default_language)


def export_event(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    event: Event,
    fmt: str,
    out_path: Path,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the event's ``fmt`` export to ``out_path`` atomically; return what was written."""
    writer = _writer(fmt)
    campaign = session.get(Campaign, event.campaign_id)
    if campaign is None:
        raise NotFound("The event's campaign no longer exists.")
    out_path = Path(out_path)
    if out_path.is_dir():
        raise InvalidInput(f"{out_path} is a folder; give a file name.", field="output")
    if not out_path.parent.is_dir():
        raise InvalidInput(f"The folder {out_path.parent} does not exist.", field="output")
    slides = build_slides(session=session, event=event, scope=SCOPES.get(fmt, "projection"))
    report = progress or (lambda _fraction: None)
    context = ExportContext(
        session=session,
        storage=storage,
        settings=settings,
        event=event,
        campaign=campaign,
        lang=export_lang(event, settings),
        progress=report,
    )
    # Hidden, unique, and with the target's suffix (writers may choose the format by it).
    temp = out_path.with_name(f".part-{secrets.token_hex(6)}-{out_path.name}")
    try:
        writer(context, slides, temp)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, out_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    report(1.0)
    return ExportResult(path=out_path, photos=len(slides))


def exports_dir(settings: Settings) -> Path:
    """Folder for exports made from the web (downloaded by hosts)."""
    path = settings.var_dir / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_path(settings: Settings, job: ExportJob) -> Path | None:
    """The file of a finished job, if it is still there."""
    if not job.storage_key or "/" in job.storage_key or job.storage_key.startswith("."):
        return None
    path = exports_dir(settings) / job.storage_key
    return path if path.is_file() else None


def start_export_job(
    *,
    session: Session,
    engine: Engine,
    storage: Storage,
    settings: Settings,
    event: Event,
    fmt: str,
) -> ExportJob:
    """Queue an export and run it in a background thread; progress is saved on the job.

    While the same export of the event is still queued or running, that job is returned.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown export format {fmt!r}.", field="format")
    active = session.exec(
        select(ExportJob).where(
            ExportJob.event_id == event.id,
            ExportJob.format == fmt,
            col(ExportJob.status).in_(("queued", "running")),
            # A job a restart interrupted stays "running"; after an hour it no longer blocks.
            col(ExportJob.created_at) > utcnow() - timedelta(hours=1),
        )
    ).first()
    if active is not None:  # a second click does not start a second export
        return active
    job = ExportJob(event_id=event.id, format=fmt)  # type: ignore[arg-type]
    session.add(job)
    session.commit()
    session.refresh(job)
    thread = threading.Thread(
        target=run_export_job,
        kwargs={"engine": engine, "storage": storage, "settings": settings, "job_id": job.id},
        name=f"export-{job.id}",
        daemon=True,
    )
    thread.start()
    return job


def run_export_job(*, engine: Engine, storage: Storage, settings: Settings, job_id: int) -> None:
    """Run one queued job to completion, recording progress, the file or the error."""
    error: str | None = None
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(ExportJob, job_id)
        if job is None:
            return
        event = session.get(Event, job.event_id)
        name = f"event-{job.event_id}-{job.format}-{secrets.token_hex(8)}{EXTENSIONS[job.format]}"
        last = [0.0]

        def progress(fraction: float) -> None:
            # Saved at most every 2 %: the host's progress bar needs no more.
            if fraction - last[0] >= 0.02 or fraction >= 1.0:
                last[0] = fraction
                _update_job(engine, job_id, progress=min(fraction, 0.99))

        _update_job(engine, job_id, status="running")
        try:
            if event is None:
                raise NotFound("The event no longer exists.")
            export_event(
                session=session,
                storage=storage,
                settings=settings,
                event=event,
                fmt=job.format,
                out_path=exports_dir(settings) / name,
                progress=progress,
            )
        except AggregatorError as exc:
            error = exc.message
        except Exception as exc:  # noqa: BLE001 - the host sees a failed job, the log has why
            log.exception("export job %s failed", job_id)
            error = type(exc).__name__
    # Recorded after the reading session is closed: "done" is the job's last database work.
    if error is None:
        _finish(engine, settings, job_id, name)
    else:
        _update_job(engine, job_id, status="failed", error=error, finished=True)


def _finish(engine: Engine, settings: Settings, job_id: int, name: str) -> None:
    """Mark the job done with its file, and in the same transaction keep only the files of
    the newest KEEP_PER_FORMAT exports of this event and format (older jobs stay listed,
    without a download)."""
    with Session(engine) as session:
        job = session.get(ExportJob, job_id)
        if job is None:
            return
        job.status, job.progress, job.storage_key = "done", 1.0, name
        job.finished_at = utcnow()
        session.add(job)
        session.flush()
        older = session.exec(
            select(ExportJob)
            .where(
                ExportJob.event_id == job.event_id,
                ExportJob.format == job.format,
                col(ExportJob.storage_key).is_not(None),
            )
            .order_by(col(ExportJob.id).desc())
            .offset(KEEP_PER_FORMAT)
        ).all()
        for old in older:
            path = job_path(settings, old)
            if path is not None:
                path.unlink(missing_ok=True)
            old.storage_key = None
            session.add(old)
        session.commit()


def _update_job(engine: Engine, job_id: int, *, finished: bool = False, **values: Any) -> None:
    with Session(engine) as session:
        job = session.get(ExportJob, job_id)
        if job is None:
            return
        for key, value in values.items():
            setattr(job, key, value)
        if finished:
            job.finished_at = utcnow()
        session.add(job)
        session.commit()
