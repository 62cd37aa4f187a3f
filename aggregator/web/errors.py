"""The one place where errors become HTTP: JSON under ``/api``, translated pages elsewhere."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aggregator.errors import AggregatorError, LoginRequired, TooManyRequests
from aggregator.i18n import N_
from aggregator.web.templating import gettext, render

log = logging.getLogger(__name__)

TITLES = {
    400: N_("The request could not be understood"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed"),
    409: N_("Someone else changed this first"),
    410: N_("This is no longer available"),
    413: N_("The file is too large"),
    415: N_("This kind of file is not accepted"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong on our side"),
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    code: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render one error consistently (JSON body with code and message, or a page)."""
    if _wants_json(request):
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )
    title = gettext(request, TITLES.get(status, TITLES[400 if status < 500 else 500]))
    return render(
        request,
        [f"errors/{status}.html", "errors/error.html"],
        {"status": status, "title": title, "message": gettext(request, message)},
        status_code=status,
        headers=headers,
    )


async def _aggregator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AggregatorError)
    headers = None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    status = getattr(exc, "status_code", 400)
    return error_response(request, status, exc.message, code=exc.code, headers=headers)


async def _login_required(request: Request, exc: Exception) -> Response:
    # Pages send people to the login form and back; the API answers 401 like any error.
    assert isinstance(exc, LoginRequired)
    if _wants_json(request):
        return error_response(request, 401, exc.message, code=exc.code)
    from urllib.parse import quote

    target = exc.next_url if exc.next_url.startswith("/") else "/"
    return RedirectResponse(
        f"/login?next={quote(target, safe='/')}",
        status_code=303,
        headers={"Cache-Control": "no-store"},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else ""
    message = message or TITLES.get(exc.status_code, "")
    return error_response(
        request,
        exc.status_code,
        message,
        code=f"http_{exc.status_code}",
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [".".join(str(p) for p in err.get("loc", ())[1:]) for err in exc.errors()]
    message = "Please check these fields: " + ", ".join(f for f in fields if f)
    if _wants_json(request):
        return JSONResponse(
            {
                "error": {
                    "code": "invalid_input",
                    "message": message,
                    "fields": [
                        {"field": f, "message": str(e.get("msg", ""))}
                        for f, e in zip(fields, exc.errors(), strict=True)
                    ],
                }
            },
            status_code=422,
        )
    return error_response(request, 422, "Please check what you entered", code="invalid_input")


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The last line of defence: log the traceback, show people a calm page without it.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, TITLES[500], code="internal")


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(AggregatorError, _aggregator_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
