"""An event's slideshow settings: the full set of options, their defaults and validation.

``Event.settings`` is JSON; everything reads it through ``effective_settings`` so rows written
by older versions (or by ``services.events.create_event``) get every key with a sane value.
``parse_settings_form`` turns the host's form fields into a validated settings dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from aggregator.config import LANGUAGE_CODES
from aggregator.errors import InvalidInput
from aggregator.i18n import N_
from aggregator.models import Event
from aggregator.services.events import DEFAULT_EVENT_SETTINGS

ORDERS: Final = ("chronological", "newest_replay", "shuffled")
TRANSITIONS: Final = ("crossfade", "none")
CAPTION_FIELDS: Final = ("name", "city", "message", "source")
THEMES: Final = ("dark", "light")
INTERVAL_RANGE: Final = (3, 600)
SILENCE_RANGE: Final = (10, 600)
QR_EVERY_RANGE: Final = (0, 500)
MAX_TEXT: Final = 500
MAX_TITLE: Final = 200
MAX_FILTER_VALUES: Final = 50

# Labels shown on the host's settings page (translated when rendered).
ORDER_LABELS: Final = {
    "chronological": N_("Oldest first, in the order they were shared"),
    "newest_replay": N_("Newest first, replaying older photos when it is quiet"),
    "shuffled": N_("Shuffled (the same order on every screen)"),
}
TRANSITION_LABELS: Final = {"crossfade": N_("Slow crossfade"), "none": N_("None")}
CAPTION_LABELS: Final = {
    "name": N_("Name"),
    "city": N_("City or community"),
    "message": N_("Message, in its original language"),
    "source": N_("Where it was shared"),
}
THEME_LABELS: Final = {"dark": N_("Dark (memorial)"), "light": N_("Light")}

SETTING_DEFAULTS: Final[dict[str, Any]] = {
    **DEFAULT_EVENT_SETTINGS,
    "silence_slide": False,  # a moment-of-silence slide after the intro in every loop
    "extra_campaigns": [],  # more campaign ids shown besides Event.campaign_id
    "logo": None,  # storage key of a processed logo image
}
FILTER_KEYS: Final = ("sources", "cities", "languages", "date_from", "date_to")


def effective_settings(event: Event) -> dict[str, Any]:
    """The event's settings with a default for every missing key (never raises)."""
    merged = {**SETTING_DEFAULTS, **(event.settings or {})}
    merged["intro"] = _slide_text(merged.get("intro"))
    merged["closing"] = _slide_text(merged.get("closing"))
    raw_filters = merged.get("filters")
    filters: dict[str, Any] = raw_filters if isinstance(raw_filters, dict) else {}
    merged["filters"] = {key: filters.get(key) for key in FILTER_KEYS}
    if merged.get("order") not in ORDERS:
        merged["order"] = SETTING_DEFAULTS["order"]
    if merged.get("transition") not in TRANSITIONS:
        merged["transition"] = "crossfade"
    captions = merged.get("captions")
    merged["captions"] = (
        [c for c in captions if c in CAPTION_FIELDS]
        if isinstance(captions, list)
        else list(SETTING_DEFAULTS["captions"])
    )
    return merged


def _slide_text(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {"title": "", "text": ""}
    return {"title": str(value.get("title") or ""), "text": str(value.get("text") or "")}


def _int(form: Mapping[str, Any], name: str, bounds: tuple[int, int], default: int) -> int:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(N_("Please enter a whole number."), field=name) from None
    low, high = bounds
    if not low <= value <= high:
        raise InvalidInput(N_("This number is outside the allowed range."), field=name)
    return value


def _text(form: Mapping[str, Any], name: str, limit: int) -> str:
    value = str(form.get(name) or "").strip()
    if len(value) > limit:
        raise InvalidInput(N_("This text is too long."), field=name)
    return value


def _choice(form: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = str(form.get(name) or default)
    if value not in choices:
        raise InvalidInput(N_("Please choose one of the options."), field=name)
    return value


def _many(form: Mapping[str, Any], name: str) -> list[str]:
    """Repeated form fields (a list) or one comma-separated text field."""
    raw = form.get(name)
    values: list[str] = []
    items = raw if isinstance(raw, list | tuple) else [raw]
    for item in items:
        values.extend(part.strip() for part in str(item or "").split(","))
    unique = list(dict.fromkeys(v for v in values if v))
    if len(unique) > MAX_FILTER_VALUES:
        raise InvalidInput(N_("Too many values."), field=name)
    return unique


def _ids(form: Mapping[str, Any], name: str, allowed: set[int] | None) -> list[int]:
    ids: list[int] = []
    for value in _many(form, name):
        if not value.isdigit() or (allowed is not None and int(value) not in allowed):
            raise InvalidInput(N_("Please choose from the list."), field=name)
        ids.append(int(value))
    return ids


def _date(form: Mapping[str, Any], name: str) -> str | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise InvalidInput(N_("Please enter a date as YYYY-MM-DD."), field=name) from None


def parse_settings_form(
    form: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
    source_ids: set[int] | None = None,
    campaign_ids: set[int] | None = None,
) -> dict[str, Any]:
    """Validated settings from the host's form fields; InvalidInput names the bad field.

    ``source_ids``/``campaign_ids`` restrict what the filters may refer to. Keys the form
    does not manage (e.g. ``logo``) are kept from ``current``.
    """
    base = {**SETTING_DEFAULTS, **(current or {})}
    captions = [c for c in _many(form, "captions") if c in CAPTION_FIELDS]
    language = str(form.get("language") or "").strip() or None
    if language is not None and language not in LANGUAGE_CODES:
        raise InvalidInput(N_("Please choose one of the languages."), field="language")
    date_from, date_to = _date(form, "date_from"), _date(form, "date_to")
    if date_from and date_to and date_to < date_from:
        raise InvalidInput(N_("The end date must not be before the start date."), field="date_to")
    languages = _many(form, "filter_languages")
    if any(len(code) > 20 for code in languages):
        raise InvalidInput(
            N_("Please use language codes such as ru or kk."), field="filter_languages"
        )
    cities = _many(form, "filter_cities")
    if any(len(city) > 200 for city in cities):
        raise InvalidInput(N_("This text is too long."), field="filter_cities")
    return {
        **base,
        "interval": _int(form, "interval", INTERVAL_RANGE, int(base["interval"])),
        "order": _choice(form, "order", ORDERS, str(base["order"])),
        "transition": _choice(form, "transition", TRANSITIONS, "crossfade"),
        "captions": [c for c in CAPTION_FIELDS if c in captions],
        "theme": _choice(form, "theme", THEMES, "dark"),
        "qr_every": _int(form, "qr_every", QR_EVERY_RANGE, 0),
        "intro": {
            "title": _text(form, "intro_title", MAX_TITLE),
            "text": _text(form, "intro_text", MAX_TEXT),
        },
        "closing": {
            "title": _text(form, "closing_title", MAX_TITLE),
            "text": _text(form, "closing_text", MAX_TEXT),
        },
        "silence_seconds": _int(form, "silence_seconds", SILENCE_RANGE, 60),
        "silence_slide": str(form.get("silence_slide") or "") in {"1", "on", "true"},
        "language": language,
        "extra_campaigns": _ids(form, "extra_campaigns", campaign_ids),
        "filters": {
            "sources": _ids(form, "filter_sources", source_ids),
            "cities": cities,
            "languages": [code.lower() for code in languages],
            "date_from": date_from,
            "date_to": date_to,
        },
    }
