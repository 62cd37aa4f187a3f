"""The participant's upload: the campaign page with its form, per-photo staging, the submission.

Uploads are streamed (``services.uploads_stream``) and processed in worker threads; database
work runs in threads too, so a slow disk never stalls other uploads. See ``services.uploads``
for the two upload paths (per-photo staging with JavaScript, one plain form without).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aggregator.config import Settings
from aggregator.deps import SessionDep, request_session
from aggregator.errors import AggregatorError, Forbidden, TooManyRequests
from aggregator.i18n import LANGUAGE_NAMES, N_
from aggregator.models import CONSENT_SCOPES, Campaign, StagedPhoto
from aggregator.services import uploads as up
from aggregator.services.campaigns import DEFAULT_CONSENT, get_campaign, localized
from aggregator.services.ingest import IncomingImage
from aggregator.services.poster import sign_text
from aggregator.services.uploads_commit import committer_for
from aggregator.services.uploads_stream import ReceivedForm, mib, receive_form
from aggregator.web.auth import client_ip
from aggregator.web.csrf import check_csrf
from aggregator.web.templating import gettext, render

router = APIRouter()
T = TypeVar("T")


def app_settings(request: Request) -> Settings:
    """The app's settings, read in the handler: as a dependency, FastAPI would run it in a
    worker thread (a plain ``def``), a hop every upload would pay for nothing."""
    settings: Settings = request.app.state.settings
    return settings


def upload_gates(request: Request) -> up.UploadGates:
    """The app's limits on the last step of uploads, made on first use."""
    state = request.app.state
    gates: up.UploadGates | None = getattr(state, "upload_gates", None)
    if gates is None:
        gates = state.upload_gates = up.UploadGates.create()
    return gates


async def in_session(request: Request, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``fn(session=..., **kwargs)`` in a worker thread with its own short session.

    An upload takes seconds; holding a pooled connection (and on SQLite a read snapshot)
    across it would starve the pool under many uploads, so each database step gets its own.
    """
    return await _in_thread_session(request, fn, None, kwargs)


async def in_upload_step(request: Request, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Like ``in_session``, for an upload's last step: ``fn`` also gets the media pipeline
    (``processor``, from ``uploads.make_processor``) and ``gate`` (processing), and runs on the
    threads of ``UploadGates`` (see there)."""
    gates = upload_gates(request)
    kwargs["processor"] = up.make_processor(app_settings(request))
    kwargs["gate"] = gates.processing
    return await _in_thread_session(request, fn, gates.threads, kwargs)


async def _in_thread_session(
    request: Request,
    fn: Callable[..., T],
    limiter: anyio.CapacityLimiter | None,
    kwargs: dict[str, Any],
) -> T:
    def call() -> T:
        # The session connects on its first query: processing before it holds no connection.
        with request_session(request) as session:
            return fn(session=session, **kwargs)

    return await anyio.to_thread.run_sync(call, limiter=limiter)


def upload_in_progress(request: Request) -> AbstractContextManager[None]:
    """Count this upload as on its way to the group commit, from its arrival until it is
    answered (see ``uploads_commit``: a group waits briefly for uploads on their way)."""
    return committer_for(request.app.state.engine).in_progress()


def check_same_origin(request: Request) -> None:
    """Refuse requests a browser marks as cross-site (Fetch Metadata, then Origin)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    cross = site == "cross-site"
    if origin is not None and not cross:
        cross = origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")
    if cross:
        raise Forbidden("Cross-site request refused.", code="csrf")


def _consent_rows(campaign: Campaign, request: Request) -> list[tuple[str, str, bool]]:
    texts = localized(campaign, request.state.lang).consent
    rows = []
    for scope in CONSENT_SCOPES:
        text = texts[scope]
        if text == DEFAULT_CONSENT[scope]:  # not customised: our catalogs translate it
            text = gettext(request, text)
        rows.append((scope, text, scope == CONSENT_SCOPES[0]))
    return rows


# The default consent wording lives in services.campaigns; listed here for extraction.
_CONSENT_MSGIDS: Final = (
    N_("My photo may be shown at commemorative events."),
    N_("My photo may appear in the public online gallery."),
    N_("My photo may be kept in the memorial's archive."),
)


def campaign_page_response(
    request: Request,
    campaign: Campaign,
    *,
    status: int = 200,
    problems: Sequence[up.Problem] = (),
    values: dict[str, Any] | None = None,
    staged: Sequence[StagedPhoto] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    """Render the campaign page, with the form's previous values and problems when refused."""
    settings: Settings = request.app.state.settings
    lang = request.state.lang
    text = localized(campaign, lang)
    fixed = [up.with_limits(p, settings) for p in problems]
    field_errors: dict[str, list[str]] = {}
    file_errors: list[tuple[str, str]] = []
    general: list[str] = []
    for problem in fixed:
        message = problem.text(lang)
        if problem.filename:
            file_errors.append((problem.filename, message))
        elif problem.field and problem.field != "photos":
            field_errors.setdefault(problem.field, []).append(message)
        else:
            general.append(message)
    languages = [
        c for c in dict.fromkeys([*campaign.languages, *settings.languages]) if c in LANGUAGE_NAMES
    ]
    context = {
        "campaign": campaign,
        "text": text,
        "sign": sign_text(campaign, lang),
        "window": up.window_state(campaign),
        "consent_rows": _consent_rows(campaign, request),
        "message_languages": languages,
        "values": values or {"language": lang, "consent": []},
        "field_errors": field_errors,
        "file_errors": file_errors,
        "general_errors": general,
        "staged": [(row.token, row.derivatives.get("thumb", {}).get("key")) for row in staged],
        "max_files": settings.upload_max_files,
        "max_bytes": settings.upload_max_bytes,
        "max_mb": mib(settings.upload_max_bytes),
        "limits": {
            "name": up.MAX_NAME,
            "city": up.MAX_CITY,
            "message": up.MAX_MESSAGE,
            "alt": up.MAX_ALT,
        },
        "honeypot": up.HONEYPOT_FIELD,
    }
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    return render(request, "public/campaign.html", context, status_code=status, headers=all_headers)


@router.get("/c/{slug}", name="campaign_page", include_in_schema=False)
def campaign_page(slug: str, request: Request, session: SessionDep) -> Response:
    """The campaign's text and sign in the visitor's language, and the upload form."""
    return campaign_page_response(request, get_campaign(session=session, slug=slug))


def _retry_headers(exc: AggregatorError) -> dict[str, str]:
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    return {}


@router.post("/c/{slug}/photos", name="stage_photo", include_in_schema=False)
async def stage_photo(slug: str, request: Request) -> Response:
    """One photo sent by the page's script: processed and kept for the form (JSON answer)."""
    settings = app_settings(request)
    lang = request.state.lang
    try:
        check_same_origin(request)
        check_csrf(request, None)
        campaign = await in_session(
            request,
            up.open_upload,
            settings=settings,
            slug=slug,
            ip=client_ip(request),
            photo=True,
        )
        with await receive_form(
            request.headers, request.stream(), max_file_bytes=settings.upload_max_bytes, max_files=1
        ) as form:
            if not form.files:
                raise up.SubmissionRefused([up.Problem("no_photos", up.MESSAGES["no_photos"])])
            row = await in_upload_step(
                request,
                up.process_and_stage,
                storage=request.app.state.storage,
                campaign=campaign,
                owner=up.owner_of(request.state.csrf_token),
                file=form.files[0],
            )
    except AggregatorError as exc:
        problem = up.with_limits(up.problem_for(exc), settings)
        status = 404 if exc.status_code == 404 else problem.status
        return JSONResponse(
            {"error": {"code": problem.code, "message": problem.text(lang)}},
            status_code=status,
            headers={"Cache-Control": "no-store", **_retry_headers(exc)},
        )
    thumb = row.derivatives["thumb"]["key"]
    return JSONResponse(
        {"id": row.token, "thumb": request.url_for("media", key=thumb).path},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


def _values(form: ReceivedForm) -> dict[str, Any]:
    return {
        "name": form.get("name"),
        "city": form.get("city"),
        "message": form.get("message"),
        "language": form.get("language"),
        "consent": form.getlist("consent"),
    }


def _multi(form: ReceivedForm) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in form.items():
        grouped.setdefault(key, []).append(value)
    return grouped


@router.post("/c/{slug}/submit", name="submit_photos", include_in_schema=False)
async def submit_photos(slug: str, request: Request) -> Response:
    """The form: staged photos (script) or the photos themselves (no script) → the queue."""
    with upload_in_progress(request):
        return await _receive_submission(slug, request)


async def _receive_submission(slug: str, request: Request) -> Response:
    settings = app_settings(request)

    def before_files(form: ReceivedForm) -> None:
        check_csrf(request, form.get("csrf_token") or None)

    try:
        check_same_origin(request)
        campaign = await in_session(
            request, up.open_upload, settings=settings, slug=slug, ip=client_ip(request)
        )
        form = await receive_form(
            request.headers,
            request.stream(),
            max_file_bytes=settings.upload_max_bytes,
            max_files=settings.upload_max_files,
            before_files=before_files,
        )
    except AggregatorError as exc:
        if exc.status_code == 404:
            raise
        problem = up.problem_for(exc)
        return campaign_page_response(
            request,
            await in_session(request, get_campaign, slug=slug),
            status=problem.status,
            problems=[problem],
            headers=_retry_headers(exc),
        )
    with form:
        return await _finish_submission(request, settings, campaign, form)


async def _finish_submission(
    request: Request,
    settings: Settings,
    campaign: Campaign,
    form: ReceivedForm,
) -> Response:
    storage = request.app.state.storage
    owner = up.owner_of(request.state.csrf_token)
    languages = [*campaign.languages, *settings.languages]
    fields, problems = up.read_fields(
        _multi(form), languages=languages, default_language=request.state.lang
    )
    tokens = form.getlist("staged")
    staged, staged_problems = (
        await in_session(
            request,
            up.load_staged,
            storage=storage,
            campaign=campaign,
            owner=owner,
            tokens=tokens,
        )
        if tokens
        else ([], [])
    )
    problems += staged_problems
    total = len(staged) + len(form.files)
    if total == 0 and not staged_problems:
        problems.append(up.Problem("no_photos", up.MESSAGES["no_photos"], field="photos"))
    if total > settings.upload_max_files:
        problems.append(
            up.Problem(
                "too_many_files",
                up.MESSAGES["too_many_files"],
                {"limit": settings.upload_max_files},
                "photos",
            )
        )
    shared_alt = up.clean_alt(form.get("alt"))
    finished = await in_upload_step(
        request,
        up.process_and_store,
        storage=storage,
        settings=settings,
        campaign=campaign,
        fields=fields,
        problems=problems,
        files=form.files,
        alts=[shared_alt] * len(form.files),
        staged=[
            (row, IncomingImage(image, up.clean_alt(form.get(f"alt:{row.token}")) or shared_alt))
            for row, image in staged
        ],
        keep_for=owner,
    )
    if finished.ingested is None:
        return campaign_page_response(
            request,
            campaign,
            status=finished.problems[0].status,
            problems=finished.problems,
            values=_values(form),
            staged=finished.staged,
        )
    target = request.url_for("receipt", token=finished.ingested.receipt_token or "").path
    return RedirectResponse(
        f"{target}?new=1", status_code=303, headers={"Cache-Control": "no-store"}
    )
