"""Jinja templates: one environment per app, filters and globals registered here only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, Template, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from aggregator import i18n

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """Templates ship in the wheel (aggregator/templates); a checkout keeps them at top level."""
    packaged = PACKAGE_DIR / "templates"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "templates"


@pass_context
def _gettext(context: Context, message: str) -> str:
    return str(context["i18n"].gettext(message))


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return str(context["i18n"].ngettext(singular, plural, n))


@pass_context
def _format_datetime(context: Context, value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return str(format_datetime(value, format=fmt, locale=i18n.locale(context["lang"])))


@pass_context
def _format_number(context: Context, value: float) -> str:
    return str(format_decimal(value, locale=i18n.locale(context["lang"])))


def make_templates() -> Jinja2Templates:
    """Build the template environment with i18n callables bound to each render's language."""
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
    )
    templates = Jinja2Templates(env=env)  # adds url_for() bound to each render's request
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["datetime"] = _format_datetime
    env.filters["number"] = _format_number
    env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
    return templates


def render(
    request: Request,
    name: str | list[str],
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page with the request's language, direction, CSRF token and user."""
    lang = getattr(request.state, "lang", "en")
    full = {
        "request": request,
        "lang": lang,
        "dir": i18n.direction(lang),
        "i18n": i18n.translations(lang),
        "languages": request.app.state.settings.languages,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "user": getattr(request.state, "user", None),
        **(context or {}),
    }
    templates: Jinja2Templates = request.app.state.templates
    names: list[str | Template] = [name] if isinstance(name, str) else list(name)
    template = templates.env.select_template(names)
    return HTMLResponse(template.render(full), status_code=status_code, headers=dict(headers or {}))


def gettext(request: Request, message: str) -> str:
    """Translate ``message`` into the request's language (for Python-side messages)."""
    return str(i18n.translations(getattr(request.state, "lang", "en")).gettext(message))
