"""The participant's upload: the campaign page with its form, per-photo staging, the submission.

Uploads are streamed here (``services.uploads_stream``); their rate count, processing and
storing run in the upload worker, a process of its own (``services.uploads_worker``), so
neither a slow disk nor the database's Python time stalls the uploads still arriving. See
``services.uploads`` for the two upload paths (per-photo staging with JavaScript, one plain
form without).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from aggregator.models import CONSENT_SCOPES, Campaign
from aggregator.services import uploads as up
from aggregator.services.campaigns import DEFAULT_CONSENT, get_campaign, localized
from aggregator.services.poster import sign_text
from aggregator.services.uploads_stream import ReceivedForm, mib, receive_form
from aggregator.services.uploads_worker import FormTooLarge, SentForm, UploadWorker
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


def upload_worker(request: Request) -> UploadWorker:
    """The app's upload worker (``services.uploads_worker``)."""
    worker: UploadWorker = request.app.state.upload_worker
    return worker


async def send_form(request: Request, slug: str, **kwargs: Any) -> SentForm:
    """The worker's ``store`` step for a received form; the worker stopping, or a form too
    large to reach it, comes back as a refused form (``SentForm.problems``)."""
    try:
        sent: SentForm = await upload_worker(request).call("store", slug=slug, **kwargs)
    except (up.UploadsUnavailable, FormTooLarge) as exc:
        return SentForm(problems=(up.problem_for(exc),))
    return sent


async def in_session(request: Request, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``fn(session=..., **kwargs)`` in a worker thread with its own short session (an
    upload takes seconds: a session held across it would hold a pooled connection)."""

    def call() -> T:
        with request_session(request) as session:
            return fn(session=session, **kwargs)

    return await anyio.to_thread.run_sync(call)


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
    staged: Sequence[tuple[str, str | None]] = (),
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
        "staged": staged,  # (token, thumbnail key) of the photos kept for the form
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
        worker = upload_worker(request)
        await worker.call("open", slug=slug, ip=client_ip(request), photo=True)
        with await receive_form(
            request.headers, request.stream(), max_file_bytes=settings.upload_max_bytes, max_files=1
        ) as form:
            if not form.files:
                raise up.SubmissionRefused([up.Problem("no_photos", up.MESSAGES["no_photos"])])
            token, thumb = await worker.call(
                "stage",
                slug=slug,
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
    return JSONResponse(
        {"id": token, "thumb": request.url_for("media", key=thumb).path},
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
    with upload_worker(request).in_progress():
        return await _receive_submission(slug, request)


async def _receive_submission(slug: str, request: Request) -> Response:
    settings = app_settings(request)

    def before_files(form: ReceivedForm) -> None:
        check_csrf(request, form.get("csrf_token") or None)

    try:
        check_same_origin(request)
        languages = await upload_worker(request).call("open", slug=slug, ip=client_ip(request))
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
        return await _finish_submission(request, settings, slug, languages, form)


async def _finish_submission(
    request: Request,
    settings: Settings,
    slug: str,
    languages: Sequence[str],
    form: ReceivedForm,
) -> Response:
    owner = up.owner_of(request.state.csrf_token)
    fields, problems = up.read_fields(
        _multi(form),
        languages=[*languages, *settings.languages],
        default_language=request.state.lang,
    )
    tokens = form.getlist("staged")
    shared_alt = up.clean_alt(form.get("alt"))
    sent = await send_form(
        request,
        slug,
        fields=fields,
        problems=problems,
        files=form.files,
        alts=[shared_alt] * len(form.files),
        tokens=tokens,
        staged_alts={t: up.clean_alt(form.get(f"alt:{t}")) or shared_alt for t in tokens},
        keep_for=owner,
    )
    if sent.receipt_token is None:
        return campaign_page_response(
            request,
            await in_session(request, get_campaign, slug=slug),
            status=sent.problems[0].status,
            problems=sent.problems,
            values=_values(form),
            staged=sent.staged,
        )
    target = request.url_for("receipt", token=sent.receipt_token).path
    return RedirectResponse(
        f"{target}?new=1", status_code=303, headers={"Cache-Control": "no-store"}
    )
