"""``POST /api/v1/campaigns/{slug}/submissions``: uploads from kiosks and partner sites.

The same limits, pipeline and all-or-nothing rule as the upload page, answered in JSON
(``{"error": {"code", "message"}}``, plus ``files`` naming each refused photo). No cookies, so
no CSRF token; the per-IP rate limit is shared with the page. The body is parsed by
``services.uploads_stream`` (not by FastAPI), so its schema is given to OpenAPI by hand.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aggregator.errors import AggregatorError, TooManyRequests
from aggregator.models import CONSENT_SCOPES
from aggregator.services import uploads as up
from aggregator.services.uploads_stream import receive_form
from aggregator.web.auth import client_ip
from aggregator.web.routes.participate import app_settings, send_form, upload_worker

router = APIRouter(prefix="/api/v1", tags=["uploads"])


class SubmissionCreated(BaseModel):
    """The new submission, waiting for a moderator."""

    id: str = Field(description="Public id of the submission.")
    status: str = Field(description="Moderation state: `pending` until a moderator decides.")
    photos: int = Field(description="How many photos were stored.")
    receipt_url: str = Field(
        description="Private page where the participant sees the status and can withdraw. "
        "Show it to them once; it cannot be recovered."
    )


class FileError(BaseModel):
    """Why one photo was refused."""

    index: int = Field(description="Position of the photo in the request (0-based).")
    filename: str
    code: str = Field(description="too_large, too_many_pixels, unsupported_format, corrupt…")
    message: str


class ErrorDetail(BaseModel):
    """A machine-readable code and a message in the caller's Accept-Language."""

    code: str
    message: str
    files: list[FileError] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ErrorDetail


_FORM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["photos", "consent"],
    "properties": {
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "1–10 images (JPEG, PNG, GIF, WebP, HEIC/HEIF, AVIF), each ≤ 16 MiB.",
        },
        "alt": {
            "type": "array",
            "items": {"type": "string", "maxLength": up.MAX_ALT},
            "description": "Alt text for each photo, in the same order (optional).",
        },
        "name": {"type": "string", "maxLength": up.MAX_NAME, "description": "Empty: anonymous."},
        "city": {"type": "string", "maxLength": up.MAX_CITY},
        "message": {"type": "string", "maxLength": up.MAX_MESSAGE},
        "language": {"type": "string", "description": "Language of the message (en, ru, kk…)."},
        "consent": {
            "type": "array",
            "items": {"type": "string", "enum": list(CONSENT_SCOPES)},
            "description": "Consent scopes given; `projection` is required. Repeat the field "
            "or separate with commas.",
        },
    },
}
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "The body ended early or could not be read.",
        403: "Uploads for this campaign are closed.",
        404: "No such campaign.",
        413: "A photo (or the body) is too large; reading stopped at the limit.",
        415: "Not multipart/form-data, or a file that is not a supported image.",
        422: "A field is missing or wrong, or a photo could not be used.",
        429: "Too many uploads from this address; see Retry-After.",
    }.items()
}


def _error(
    request: Request, problems: list[up.Problem], exc: AggregatorError | None = None
) -> Response:
    lang = request.state.lang
    settings = request.app.state.settings
    fixed = [up.with_limits(p, settings) for p in problems]
    first = fixed[0]
    files = [
        {"index": p.index, "filename": p.filename, "code": p.code, "message": p.text(lang)}
        for p in fixed
        if p.index is not None
    ]
    status = 404 if exc is not None and exc.status_code == 404 else first.status
    headers = {"Cache-Control": "no-store"}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    body = {"error": {"code": first.code, "message": first.text(lang), "files": files}}
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/campaigns/{slug}/submissions",
    name="api_create_submission",
    status_code=201,
    response_model=SubmissionCreated,
    responses=_ERRORS,
    summary="Send photos to a campaign's moderation queue",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}},
        }
    },
)
async def create_submission(slug: str, request: Request) -> Response:
    """Store one submission of 1–10 photos; refuses all of it if any photo is refused."""
    with upload_worker(request).in_progress():
        return await _create_submission(slug, request)


async def _create_submission(slug: str, request: Request) -> Response:
    settings = app_settings(request)
    try:
        languages = await upload_worker(request).call("open", slug=slug, ip=client_ip(request))
        form = await receive_form(
            request.headers,
            request.stream(),
            max_file_bytes=settings.upload_max_bytes,
            max_files=settings.upload_max_files,
        )
    except AggregatorError as exc:
        return _error(request, [up.problem_for(exc)], exc)
    with form:
        values: dict[str, list[str]] = {}
        for key, value in form.items():
            parts = value.split(",") if key == "consent" else [value]
            values.setdefault(key, []).extend(p.strip() for p in parts)
        fields, problems = up.read_fields(
            values,
            languages=[*languages, *settings.languages],
            default_language=request.state.lang,
        )
        alts = [up.clean_alt(alt) for alt in form.getlist("alt")]
        sent = await send_form(
            request,
            slug,
            fields=fields,
            problems=problems,
            files=form.files,
            alts=[alts[i] if i < len(alts) else "" for i in range(len(form.files))],
        )
    if sent.receipt_token is None:
        return _error(request, list(sent.problems))
    receipt_path = request.url_for("receipt", token=sent.receipt_token).path
    body = SubmissionCreated(
        id=sent.public_id,
        status=sent.status,
        photos=len(form.files),
        receipt_url=settings.public_base_url.rstrip("/") + receipt_path,
    )
    return JSONResponse(body.model_dump(), status_code=201, headers={"Cache-Control": "no-store"})
