"""Participant uploads: limits, form fields, processing, staging and the final submission.

Design (two paths, one result):

* **With JavaScript** the page sends each photo on its own to ``POST /c/{slug}/photos``: it is
  checked, processed and its derivatives stored as a ``StagedPhoto`` bound to the browser's
  CSRF cookie, expiring after ``STAGE_TTL``. That is what gives per-file progress and a retry
  of one failed file without losing the others. The form is then sent with only the staged
  tokens (``staged``) and per-photo alt text (``alt:<token>``).
* **Without JavaScript** the same form posts every photo at once (``photos``); each is
  processed in turn, and if any is refused nothing is stored and the page names the file.

Both end in ``store_submission`` → ``services.ingest`` (receipt token, moderation queue).
Staged photos never sent are deleted by ``sweep_staged`` (run on every staging and by the
maintenance job). Rate limits: ``upload_rate_limit`` submissions per window per IP (IPv6 per
/64); staged photos have their own bucket of ``upload_rate_limit × upload_max_files``.
Messages are msgids translated in the visitor's language by ``Problem.text``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import anyio
from babel.dates import format_datetime
from sqlalchemy import delete
from sqlmodel import Session, col, select

from aggregator import i18n
from aggregator.config import Settings
from aggregator.errors import AggregatorError, Forbidden, TooManyRequests
from aggregator.i18n import N_
from aggregator.media import Derivative, ImageRejected, ProcessedImage, process_image
from aggregator.media.storage import Storage
from aggregator.models import CONSENT_SCOPES, Campaign, Origin, StagedPhoto, utcnow
from aggregator.services import ratelimit
from aggregator.services.ingest import Incoming, IncomingImage, Ingested, ingest, media_limits
from aggregator.services.uploads_stream import (
    IncompleteUpload,
    ReceivedFile,
    TooManyFiles,
    UnsupportedBody,
    UploadTooLarge,
    mib,
)
from aggregator.services.users import hash_token

STAGE_TTL: Final = timedelta(hours=1)
# Decoding a 40 MP photo takes ~200 MB and a core for a second; two at a time on the 2-core
# host (security.md (c)); uploads still stream in concurrently, only processing waits.
PROCESSING_CONCURRENCY: Final = 2
MAX_NAME: Final = 200
MAX_CITY: Final = 200
MAX_MESSAGE: Final = 1000
MAX_ALT: Final = 1500
HONEYPOT_FIELD: Final = "website"
# Bidi overrides and isolates let a name display as something else; they never belong in one.
_BIDI_CONTROLS: Final = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)

Processor = Callable[[bytes, str], ProcessedImage]

REJECTED: Final[dict[str, str]] = {
    "too_large": N_("This photo is larger than %(limit)s MB. Please choose a smaller one."),
    "too_many_pixels": N_(
        "This photo has too many pixels (the limit is %(megapixels)s megapixels). "
        "Please choose a smaller one."
    ),
    "unsupported_format": N_(
        "This is not a kind of picture we can use. Please choose a JPEG, PNG, HEIC, WebP or "
        "GIF photo."
    ),
    "corrupt": N_("This file could not be read as a picture. It may be damaged or incomplete."),
    "empty": N_("This file is empty."),
    "bad_dimensions": N_("This picture has impossible dimensions."),
}
MESSAGES: Final[dict[str, str]] = {
    "too_many_files": N_("Please send at most %(limit)s photos at once."),
    "incomplete_upload": N_("The upload was interrupted before it was complete. Please try again."),
    "unsupported_body": N_("The form could not be read. Please reload the page and try again."),
    "csrf": N_("This page has expired. Please reload it and try again."),
    "uploads_closed": N_("Uploads for this campaign are closed."),
    "uploads_not_open": N_("Uploads for this campaign open on %(date)s."),
    "rate_limited": N_(
        "Many photos have been sent from this connection in a short time. Please wait "
        "%(minutes)s minutes and try again."
    ),
    "honeypot": N_("This form was filled in automatically. Please leave the last field empty."),
    "consent_required": N_(
        "Please tick the first box. Without this permission we cannot show your photo."
    ),
    "no_photos": N_("Please add at least one photo."),
    "too_long": N_("Please shorten this to %(limit)s characters."),
    "staged_missing": N_(
        "One of your photos waited too long and was removed. Please add it again."
    ),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission, attached to a field or a file, translatable."""

    code: str
    message: str  # an msgid
    params: Mapping[str, Any] = field(default_factory=dict)
    field: str = ""
    filename: str = ""
    index: int | None = None  # which photo of the request (0-based), if any
    status: int = 422

    def text(self, lang: str) -> str:
        """The message in ``lang``, dates and numbers localised."""
        translated = str(i18n.translations(lang).gettext(self.message))
        if not self.params:
            return translated
        values = {
            k: format_datetime(v, format="long", locale=i18n.locale(lang))
            if isinstance(v, datetime)
            else v
            for k, v in self.params.items()
        }
        return translated % values


class SubmissionRefused(AggregatorError):
    """The submission (or one staged photo) was refused; nothing was stored."""

    code = "refused"

    def __init__(self, problems: Sequence[Problem]) -> None:
        first = problems[0]
        super().__init__(first.text("en"), code=first.code)
        self.problems = list(problems)
        self.status_code = first.status
        self.retry_after: int | None = None


class UploadsClosed(Forbidden):
    """The campaign's upload window is not open now."""

    code = "uploads_closed"

    def __init__(self, message: str, *, opens_at: datetime | None = None) -> None:
        super().__init__(message)
        self.opens_at = opens_at


def problem_for(exc: AggregatorError, *, filename: str = "", index: int | None = None) -> Problem:
    """Turn any error an upload can meet into a translatable Problem."""
    status = int(getattr(exc, "status_code", 400))
    if isinstance(exc, SubmissionRefused):
        return exc.problems[0]
    if isinstance(exc, UploadTooLarge):
        name = exc.filename or filename
        limit = mib(exc.limit) if exc.limit else "?"
        return Problem(
            "too_large", REJECTED["too_large"], {"limit": limit}, "photos", name, index, 413
        )
    if isinstance(exc, ImageRejected):
        code = str(exc.code)
        params: dict[str, Any] = {}
        return Problem(
            code, REJECTED.get(code, REJECTED["corrupt"]), params, "photos", filename, index, status
        )
    if isinstance(exc, TooManyFiles):
        return Problem(
            "too_many_files",
            MESSAGES["too_many_files"],
            {"limit": exc.limit},
            "photos",
            filename,
            index,
            422,
        )
    if isinstance(exc, TooManyRequests):
        minutes = max(1, -(-exc.retry_after // 60))
        return Problem("rate_limited", MESSAGES["rate_limited"], {"minutes": minutes}, status=429)
    if isinstance(exc, UploadsClosed):
        if exc.opens_at is not None:
            return Problem(
                "uploads_closed", MESSAGES["uploads_not_open"], {"date": exc.opens_at}, status=403
            )
        return Problem("uploads_closed", MESSAGES["uploads_closed"], status=403)
    if isinstance(exc, Forbidden) and exc.code == "csrf":
        return Problem("csrf", MESSAGES["csrf"], status=403)
    if isinstance(exc, IncompleteUpload | UnsupportedBody):
        return Problem(exc.code, MESSAGES[exc.code], status=status)
    return Problem(exc.code, exc.message, status=status)


def with_limits(problem: Problem, settings: Settings) -> Problem:
    """Fill in the configured limit a size message quotes."""
    extra: dict[str, Any] = {}
    if problem.code == "too_large" and problem.params.get("limit") in (None, "?"):
        extra["limit"] = mib(settings.upload_max_bytes)
    if problem.code == "too_many_pixels":
        extra["megapixels"] = f"{settings.upload_max_pixels / 1e6:g}"
    if not extra:
        return problem
    return Problem(
        problem.code,
        problem.message,
        {**problem.params, **extra},
        problem.field,
        problem.filename,
        problem.index,
        problem.status,
    )


# -- window and rate ---------------------------------------------------------------------

WindowState = Literal["open", "not_yet", "closed"]


def window_state(campaign: Campaign, now: datetime | None = None) -> WindowState:
    """Whether the campaign accepts uploads at ``now``."""
    now = now or utcnow()
    if campaign.upload_opens_at is not None and now < campaign.upload_opens_at:
        return "not_yet"
    if campaign.upload_closes_at is not None and now >= campaign.upload_closes_at:
        return "closed"
    return "open"


def check_window(campaign: Campaign, now: datetime | None = None) -> None:
    """Raise UploadsClosed unless the campaign accepts uploads now."""
    state = window_state(campaign, now)
    if state == "not_yet":
        raise UploadsClosed("Uploads have not opened yet.", opens_at=campaign.upload_opens_at)
    if state == "closed":
        raise UploadsClosed("Uploads are closed.")


def count_upload(session: Session, settings: Settings, ip: str, *, photo: bool = False) -> None:
    """Count one submission (or one staged photo) for the caller's IP bucket; 429 past it."""
    limit = settings.upload_rate_limit * (settings.upload_max_files if photo else 1)
    key = f"{'upload-photo' if photo else 'upload'}:{ratelimit.ip_bucket(ip)}"
    ratelimit.hit(session, key, limit, settings.upload_rate_window_seconds)


# -- fields ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantFields:
    """What a participant wrote about their photos."""

    author_name: str = ""
    city: str = ""
    text: str = ""
    language: str = "en"
    consent: tuple[str, ...] = ()


def _clean(value: str) -> str:
    return " ".join(value.translate(_BIDI_CONTROLS).split())


def read_fields(
    values: Mapping[str, Sequence[str]],
    *,
    languages: Sequence[str],
    default_language: str,
) -> tuple[ParticipantFields, list[Problem]]:
    """Validate the text fields and consent; problems name their field."""
    problems: list[Problem] = []

    def first(name: str) -> str:
        found = values.get(name) or ()
        return found[0] if found else ""

    def limited(name: str, value: str, limit: int) -> str:
        if len(value) > limit:
            problems.append(Problem("too_long", MESSAGES["too_long"], {"limit": limit}, name))
        return value[:limit]

    name = limited("name", _clean(first("name")), MAX_NAME)
    city = limited("city", _clean(first("city")), MAX_CITY)
    message = first("message").translate(_BIDI_CONTROLS).replace("\r\n", "\n").strip()
    message = limited("message", message, MAX_MESSAGE)
    language = first("language")
    if language not in languages:
        language = default_language
    given = set(values.get("consent") or ())
    consent = tuple(scope for scope in CONSENT_SCOPES if scope in given)
    if CONSENT_SCOPES[0] not in consent:
        problems.append(Problem("consent_required", MESSAGES["consent_required"], {}, "consent"))
    if first(HONEYPOT_FIELD).strip():
        problems.append(Problem("honeypot", MESSAGES["honeypot"], {}, HONEYPOT_FIELD))
    return ParticipantFields(name, city, message, language, consent), problems


def clean_alt(value: str) -> str:
    """Alt text as stored: one line, no bidi controls, at most MAX_ALT characters."""
    return _clean(value)[:MAX_ALT]


# -- processing --------------------------------------------------------------------------


def make_processor(settings: Settings) -> Processor:
    """The media pipeline with the configured limits."""
    limits = media_limits(settings)

    def run(data: bytes, filename: str) -> ProcessedImage:
        return process_image(data, filename=filename, limits=limits)

    return run


def _process_one(file: ReceivedFile, processor: Processor) -> ProcessedImage:
    # The bytes are read here, inside the limited thread, so at most PROCESSING_CONCURRENCY
    # uploads are in memory at once however many are streaming in.
    return processor(file.read(), file.filename)


async def process_files(
    files: Sequence[ReceivedFile], processor: Processor, limiter: anyio.CapacityLimiter
) -> list[ProcessedImage | Problem]:
    """Each file through the pipeline in a worker thread; a refusal becomes a Problem."""
    results: list[ProcessedImage | Problem] = []
    for index, file in enumerate(files):
        try:
            image = await anyio.to_thread.run_sync(_process_one, file, processor, limiter=limiter)
        except ImageRejected as exc:
            results.append(problem_for(exc, filename=file.filename, index=index))
        else:
            results.append(image)
    return results


# -- staging -----------------------------------------------------------------------------


def owner_of(csrf_token: str) -> str:
    """The owner key of staged photos: a hash of the browser's CSRF cookie."""
    return hash_token(f"staged:{csrf_token}")


def stage_photo(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    owner: str,
    image: ProcessedImage,
    now: datetime | None = None,
) -> StagedPhoto:
    """Store a processed photo until the form is sent (or it expires)."""
    now = now or utcnow()
    sweep_staged(session=session, storage=storage, now=now, limit=50)
    derivatives = {
        style: {
            "key": storage.put(
                d.data,
                suffix=".jpg"
                if d.content_type == "image/jpeg"
                else ".webp"
                if d.content_type == "image/webp"
                else ".png",
            ),
            "width": d.width,
            "height": d.height,
            "content_type": d.content_type,
        }
        for style, d in image.derivatives.items()
    }
    row = StagedPhoto(
        token=secrets.token_urlsafe(18),
        campaign_id=campaign.id,  # type: ignore[arg-type]
        owner_hash=owner,
        derivatives=derivatives,
        sha256=image.sha256,
        phash=image.phash,
        width=image.width,
        height=image.height,
        color=image.color,
        source_format=image.source_format,
        created_at=now,
        expires_at=now + STAGE_TTL,
    )
    session.add(row)
    session.commit()
    return row


def load_staged(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    owner: str,
    tokens: Sequence[str],
    now: datetime | None = None,
) -> tuple[list[tuple[StagedPhoto, ProcessedImage]], list[Problem]]:
    """The caller's staged photos by token, in the given order, with their derivatives."""
    now = now or utcnow()
    wanted = list(dict.fromkeys(t for t in tokens if t))[:100]
    if not wanted:
        return [], []
    rows = session.exec(
        select(StagedPhoto).where(
            col(StagedPhoto.token).in_(wanted),
            StagedPhoto.owner_hash == owner,
            StagedPhoto.campaign_id == campaign.id,
            col(StagedPhoto.expires_at) > now,
        )
    ).all()
    by_token = {row.token: row for row in rows}
    found: list[tuple[StagedPhoto, ProcessedImage]] = []
    problems: list[Problem] = []
    for token in wanted:
        row = by_token.get(token)
        image = _reload(storage, row) if row is not None else None
        if row is None or image is None:
            problems.append(Problem("staged_missing", MESSAGES["staged_missing"], {}, "photos"))
        else:
            found.append((row, image))
    return found, problems


def _reload(storage: Storage, row: StagedPhoto) -> ProcessedImage | None:
    derivatives: dict[str, Derivative] = {}
    for style, info in row.derivatives.items():
        try:
            with storage.open(info["key"]) as handle:
                data = handle.read()
        except AggregatorError:
            return None
        derivatives[style] = Derivative(data, info["width"], info["height"], info["content_type"])
    return ProcessedImage(
        derivatives=derivatives,
        width=row.width,
        height=row.height,
        sha256=row.sha256,
        phash=row.phash,
        color=row.color,
        source_format=row.source_format,
    )


def _delete_files(storage: Storage, rows: Sequence[StagedPhoto]) -> None:
    for row in rows:
        for info in row.derivatives.values():
            try:
                storage.delete(info["key"])
            except AggregatorError:
                continue


def sweep_staged(
    *, session: Session, storage: Storage, now: datetime | None = None, limit: int = 10_000
) -> int:
    """Delete expired staged photos and their files; returns how many."""
    now = now or utcnow()
    rows = session.exec(
        select(StagedPhoto).where(col(StagedPhoto.expires_at) <= now).limit(limit)
    ).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    session.execute(delete(StagedPhoto).where(col(StagedPhoto.id).in_(ids)))
    session.commit()
    _delete_files(storage, rows)  # after the commit: a crash leaves orphans, never dangling rows
    return len(rows)


# -- the submission ----------------------------------------------------------------------


def store_submission(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    campaign: Campaign,
    fields: ParticipantFields,
    images: Sequence[IncomingImage],
    staged: Sequence[StagedPhoto] = (),
    origin: Origin = Origin.upload,
) -> Ingested:
    """Create the submission (pending, with a receipt token) and consume the staged photos."""
    incoming = Incoming(
        origin=origin,
        images=list(images),
        author_name=fields.author_name,
        city=fields.city or None,
        text=fields.text,
        language=fields.language or None,
        consent=fields.consent,
    )
    result = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=incoming,
        with_receipt=True,
        near_distance=settings.near_duplicate_distance,
        commit=False,
    )
    if staged:
        ids = [row.id for row in staged]
        session.execute(delete(StagedPhoto).where(col(StagedPhoto.id).in_(ids)))
    session.commit()
    _delete_files(storage, staged)
    return result
