"""Per-request context and headers, as plain ASGI middleware (no BaseHTTPMiddleware:
it buffers streaming bodies, which uploads and server-sent events cannot afford).

Sets ``request.state.lang`` (``?lang=`` choice, then the ``lang`` cookie, then
``Accept-Language``), ``request.state.csrf_token`` (double-submit cookie), and adds security
headers to every response unless the route set its own.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator import i18n
from aggregator.config import Settings

CSRF_COOKIE = "csrftoken"
LANG_COOKIE = "lang"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header must not break the page
                return {}
            return {key: morsel.value for key, morsel in jar.items()}
    return {}


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _query_lang(scope: Scope) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang")
    return values[0] if values else None


class RequestContextMiddleware:
    """Language, CSRF cookie and security headers for every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.secure = settings.public_base_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        enabled = self.settings.languages
        chosen = _query_lang(scope)
        set_lang = chosen if chosen in enabled else None
        lang = set_lang or (
            cookies.get(LANG_COOKIE) if cookies.get(LANG_COOKIE) in enabled else None
        )
        if lang is None:
            lang = i18n.negotiate(
                _header(scope, b"accept-language"), enabled, self.settings.default_language
            )
        csrf = cookies.get(CSRF_COOKIE, "")
        new_csrf = len(csrf) < 32 or len(csrf) > 64 or not csrf.isascii()
        if new_csrf:
            csrf = secrets.token_urlsafe(32)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["lang"] = lang
        state["csrf_token"] = csrf

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                suffix = "; Secure" if self.secure else ""
                if new_csrf:
                    headers.append(
                        "set-cookie",
                        f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Lax{suffix}",
                    )
                if set_lang:
                    headers.append(
                        "set-cookie",
                        f"{LANG_COOKIE}={set_lang}; Path=/; Max-Age=31536000; SameSite=Lax{suffix}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)
