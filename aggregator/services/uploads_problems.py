"""Why an upload was refused, as translatable messages (msgids of the ``upload`` catalog).

Every error an upload can meet (a file over the cap, a refused image, a missing tick, the
rate limit, a closed campaign) becomes a ``Problem`` that names its field or file and renders
in the visitor's language with ``Problem.text(lang)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from babel.dates import format_datetime

from aggregator import i18n
from aggregator.config import Settings
from aggregator.errors import AggregatorError, Forbidden, TooManyRequests
from aggregator.i18n import N_
from aggregator.media import ImageRejected
from aggregator.services.uploads_stream import (
    IncompleteUpload,
    TooManyFiles,
    UnsupportedBody,
    UploadTooLarge,
    mib,
)

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
    "staged_sent": N_("These photos have already been sent. There is no need to send them again."),
    "uploads_unavailable": N_(
        "We could not take your photos just now. Please wait a moment and send them again."
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


class UploadsUnavailable(AggregatorError):
    """The upload worker (``uploads_worker``) stopped during the upload (503); sending again
    starts a new one."""

    status_code = 503
    code = "uploads_unavailable"


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
    if isinstance(exc, IncompleteUpload | UnsupportedBody | UploadsUnavailable):
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
