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
The web process only receives the photos: the steps here that write (``open_upload``'s rate
count, ``process_and_stage``, ``finish_form``) run in the upload worker (``uploads_worker``).
Staged photos never sent are deleted by ``sweep_staged`` (run on every staging and by the
maintenance job). Rate limits: ``upload_rate_limit`` submissions per window per IP (IPv6 per
/64); staged photos have their own bucket of ``upload_rate_limit × upload_max_files``.
Messages are msgids translated in the visitor's language by ``Problem.text``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlmodel import Session

from aggregator.config import Settings
from aggregator.media import ImageRejected, ProcessedImage, process_image
from aggregator.media.storage import Storage, suffix_for
from aggregator.models import CONSENT_SCOPES, Campaign, Origin, StagedPhoto, utcnow
from aggregator.services import ratelimit
from aggregator.services.campaigns import kept_campaign
from aggregator.services.ingest import Incoming, IncomingImage, Ingested, media_limits
from aggregator.services.uploads_commit import Job, committer_for
from aggregator.services.uploads_problems import (
    MESSAGES,
    REJECTED,
    Problem,
    SubmissionRefused,
    UploadsClosed,
    UploadsUnavailable,
    problem_for,
    with_limits,
)
from aggregator.services.uploads_staging import (
    STAGE_TTL,
    counter_session,
    delete_files,
    load_staged,
    owner_of,
    stage_photo,
    sweep_staged,
    write_lock,
)
from aggregator.services.uploads_stream import ReceivedFile

__all__ = [
    "MESSAGES",
    "REJECTED",
    "STAGE_TTL",
    "Problem",
    "SubmissionRefused",
    "UploadsClosed",
    "UploadsUnavailable",
    "load_staged",
    "owner_of",
    "problem_for",
    "stage_photo",
    "sweep_staged",
    "with_limits",
]

# Decoding a 40 MP photo takes ~200 MB and a core for a second; two at a time on the 2-core
# host (security.md (c)); uploads still stream in concurrently, only processing waits.
PROCESSING_CONCURRENCY: Final = 2
# The upload worker's threads (uploads_worker): uploads in a step at once. Only
# PROCESSING_CONCURRENCY of them decode; the others wait to, or store (file writes, then the
# group commit of uploads_commit), which waits on the disk rather than a core. Uploads that
# finish streaming together (they do: bandwidth is shared fairly) then go through in a few
# commit groups, not four at a time: bench_upload 223 → 268 MB/s with 16 instead of 4.
UPLOAD_THREADS: Final = 8 * PROCESSING_CONCURRENCY
MAX_NAME: Final = 200
MAX_CITY: Final = 200
MAX_MESSAGE: Final = 1000
MAX_ALT: Final = 1500
HONEYPOT_FIELD: Final = "website"
# Bidi overrides and isolates let a name display as something else; they never belong in one.
_BIDI_CONTROLS: Final = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)

# Reads one received file and turns it into derivatives (or raises ImageRejected).
Processor = Callable[[ReceivedFile], ProcessedImage]
# Makes the Processor for the settings (``make_processor``; a benchmark may replace it).
ProcessorFactory = Callable[[Settings], Processor]

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
    # End the request's read transaction first: on SQLite a write cannot start from a read
    # snapshot that another writer has moved past (SQLITE_BUSY_SNAPSHOT, no busy wait).
    session.commit()
    limit = settings.upload_rate_limit * (settings.upload_max_files if photo else 1)
    key = f"{'upload-photo' if photo else 'upload'}:{ratelimit.ip_bucket(ip)}"
    with write_lock(session), counter_session(session) as counters:
        ratelimit.hit(counters, key, limit, settings.upload_rate_window_seconds)


def open_upload(
    *, session: Session, settings: Settings, slug: str, ip: str, photo: bool = False
) -> Campaign:
    """The campaign of ``slug`` if it accepts an upload from ``ip`` now (404, 403, 429).

    The campaign may be a copy up to ``campaigns.KEEP_SECONDS`` old (see ``kept_campaign``).
    """
    campaign = kept_campaign(session=session, slug=slug)
    check_window(campaign)
    count_upload(session, settings, ip, photo=photo)
    return campaign


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

    def run(file: ReceivedFile) -> ProcessedImage:
        # Read here, inside the limited worker thread: at most PROCESSING_CONCURRENCY photos
        # are in memory at once however many uploads are streaming in.
        return process_image(file.read(), filename=file.filename, limits=limits)

    return run


M_MMAP_THRESHOLD: Final = -3  # glibc mallopt parameter number


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def tune_allocator() -> bool:
    """Make glibc return multi-megabyte buffers to the OS when freed (once per process).

    glibc raises its mmap threshold after the first large free, so later photo-sized buffers
    (and the socket buffers of concurrent uploads) come from per-thread arenas that keep the
    memory: RSS grew ~4 MB per concurrent upload in the benchmark and stayed there. A fixed
    1 MiB threshold keeps big buffers in mmap, released on free. Returns False off glibc.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt is not None and mallopt(M_MMAP_THRESHOLD, 1024 * 1024))


def process_files(
    files: Sequence[ReceivedFile], processor: Processor, gate: threading.BoundedSemaphore
) -> list[ProcessedImage | Problem]:
    """Each file through the pipeline (in a worker thread); a refusal becomes a Problem."""
    results: list[ProcessedImage | Problem] = []
    for index, file in enumerate(files):
        try:
            with gate:
                image = processor(file)
        except ImageRejected as exc:
            results.append(problem_for(exc, filename=file.filename, index=index))
        else:
            results.append(image)
    return results


def process_and_stage(
    *,
    session: Session,
    storage: Storage,
    campaign: Campaign,
    owner: str,
    file: ReceivedFile,
    processor: Processor,
    gate: threading.BoundedSemaphore,
) -> StagedPhoto:
    """Process one photo and stage it for ``owner``; SubmissionRefused if it is refused."""
    [result] = process_files([file], processor, gate)
    if isinstance(result, Problem):
        raise SubmissionRefused([result])
    return stage_photo(
        session=session, storage=storage, campaign=campaign, owner=owner, image=result
    )


@dataclass
class Finished:
    """The end of a submission: stored (``ingested``), or refused with its ``problems``.

    A refused form keeps its good photos staged (``staged``: those it came with and those
    staged now) so that nobody chooses them twice; nothing else is stored.
    """

    ingested: Ingested | None = None
    problems: list[Problem] = field(default_factory=list)
    staged: list[StagedPhoto] = field(default_factory=list)


def process_and_store(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    campaign: Campaign,
    fields: ParticipantFields,
    problems: Sequence[Problem],
    files: Sequence[ReceivedFile],
    alts: Sequence[str],
    processor: Processor,
    gate: threading.BoundedSemaphore,
    staged: Sequence[tuple[StagedPhoto, IncomingImage]] = (),
    keep_for: str | None = None,
) -> Finished:
    """Process ``files`` (alt text ``alts[i]``) and store them with the staged photos.

    All or nothing: with any problem (``problems`` found earlier, or a refused file) nothing
    is stored. If then only the form was at fault and ``keep_for`` names an owner, the good
    photos are staged for that owner (never for a robot that filled in the honeypot).
    """
    results = process_files(files, processor, gate)
    refused = [r for r in results if isinstance(r, Problem)]
    processed = [r for r in results if isinstance(r, ProcessedImage)]
    if refused or problems:
        robot = any(p.code == "honeypot" for p in problems)
        kept = []
        if keep_for is not None and not refused and not robot:
            kept = [
                stage_photo(
                    session=session, storage=storage, campaign=campaign, owner=keep_for, image=image
                )
                for image in processed
            ]
        return Finished(
            problems=[*refused, *problems], staged=[*(row for row, _image in staged), *kept]
        )
    images = [image for _row, image in staged]
    images += [IncomingImage(image, alt) for image, alt in zip(processed, alts, strict=True)]
    try:
        ingested = store_submission(
            session=session,
            storage=storage,
            settings=settings,
            campaign=campaign,
            fields=fields,
            images=images,
            staged=[row for row, _image in staged],
        )
    except SubmissionRefused as taken:  # its staged photos went with another sending
        return Finished(problems=taken.problems)
    return Finished(ingested=ingested)


def finish_form(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    campaign: Campaign,
    fields: ParticipantFields,
    problems: Sequence[Problem],
    files: Sequence[ReceivedFile],
    alts: Sequence[str],
    processor: Processor,
    gate: threading.BoundedSemaphore,
    tokens: Sequence[str] = (),
    staged_alts: Mapping[str, str] | None = None,
    keep_for: str | None = None,
) -> Finished:
    """A sent form's last step: ``process_and_store`` with the photos the form names.

    Those are ``files`` (alt text ``alts[i]``) and the photos ``keep_for`` staged earlier,
    named by ``tokens`` (alt text ``staged_alts[token]``); a form without any, or with more
    than ``upload_max_files``, is refused.
    """
    problems = list(problems)
    staged: list[tuple[StagedPhoto, ProcessedImage]] = []
    missing: list[Problem] = []
    if tokens and keep_for is not None:
        staged, missing = load_staged(
            session=session, storage=storage, campaign=campaign, owner=keep_for, tokens=tokens
        )
        problems += missing
    total = len(staged) + len(files)
    if total == 0 and not missing:
        problems.append(Problem("no_photos", MESSAGES["no_photos"], field="photos"))
    limit = settings.upload_max_files
    if total > limit:
        problems.append(
            Problem("too_many_files", MESSAGES["too_many_files"], {"limit": limit}, "photos")
        )
    alt_of = staged_alts or {}
    return process_and_store(
        session=session,
        storage=storage,
        settings=settings,
        campaign=campaign,
        fields=fields,
        problems=problems,
        files=files,
        alts=alts,
        processor=processor,
        gate=gate,
        staged=[(row, IncomingImage(image, alt_of.get(row.token, ""))) for row, image in staged],
        keep_for=keep_for,
    )


# -- the submission ----------------------------------------------------------------------


def _prestore(
    storage: Storage, images: Sequence[IncomingImage], staged: Sequence[StagedPhoto]
) -> tuple[dict[bytes, str], list[str]]:
    """Keys for every derivative: a staged photo's own files, or files written now."""
    by_sha = {row.sha256: row for row in staged}
    prestored: dict[bytes, str] = {}
    written: list[str] = []
    for item in images:
        row = by_sha.get(item.image.sha256)
        for style, derivative in item.image.derivatives.items():
            if derivative.data in prestored:
                continue
            if row is not None and style in row.derivatives:
                prestored[derivative.data] = row.derivatives[style]["key"]
                continue
            key = storage.put(derivative.data, suffix=suffix_for(derivative.content_type))
            prestored[derivative.data] = key
            written.append(key)
    return prestored, written


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
    with_receipt: bool = True,
) -> Ingested:
    """Create the submission (pending, with a receipt token); staged photos become its own."""
    session.commit()  # a fresh transaction for the writes (see count_upload)
    incoming = Incoming(
        origin=origin,
        images=list(images),
        author_name=fields.author_name,
        city=fields.city or None,
        text=fields.text,
        language=fields.language or None,
        consent=fields.consent,
    )
    committer = committer_for(session)
    prestored, written = _prestore(storage, images, staged)
    job = Job(
        campaign=campaign,
        incoming=incoming,
        prestored=prestored,
        with_receipt=with_receipt,
        near_distance=settings.near_duplicate_distance,
        staged_ids=[row.id for row in staged if row.id is not None],
    )
    try:
        result = committer.run(job, storage)
    except BaseException:
        for key in written:
            storage.delete(key)
        raise
    # Files written but not taken (an image over the per-submission limit), and staged files
    # not taken over (a duplicate photo staged twice), go now; their rows never existed.
    for key in written:
        if key not in job.used:
            storage.delete(key)
    delete_files(storage, staged, keep=job.used)
    return result
