"""CSRF protection: the double-submit token set by the middleware must come back with
every state-changing request, as a form field ``csrf_token`` or an ``X-CSRF-Token`` header."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from aggregator.errors import Forbidden


def check_csrf(request: Request, supplied: str | None) -> None:
    """Raise Forbidden unless ``supplied`` matches the request's CSRF cookie."""
    expected = getattr(request.state, "csrf_token", "")
    supplied = supplied or request.headers.get("x-csrf-token") or ""
    cookie = request.cookies.get("csrftoken", "")
    # The cookie must already exist (a new one is minted on a request without it).
    if not cookie or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise Forbidden(
            "This form has expired or was sent from another site. Reload the page and try again.",
            code="csrf",
        )


async def require_csrf_form(request: Request) -> None:
    """Dependency for urlencoded/multipart forms parsed in full (not streaming uploads)."""
    supplied = request.headers.get("x-csrf-token")
    if supplied is None:
        form = await request.form()
        value = form.get("csrf_token")
        supplied = value if isinstance(value, str) else None
    check_csrf(request, supplied)
