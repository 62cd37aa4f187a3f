"""Interface languages: catalogs, negotiation and text direction.

Catalogs are gettext ``.po`` files under ``aggregator/locale/<lang>/LC_MESSAGES/``, one file
per area of the product (``core``, ``upload``, ``moderation``, ``slideshow``, ``gallery``) so
the areas can be translated independently. They are compiled in memory when first used, so a
plain ``pip install`` needs no build step; ``scripts/i18n`` extracts new strings.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "kk": "Қазақша", "he": "עברית"}
RTL_LANGUAGES = frozenset({"he"})


@functools.cache
def translations(lang: str) -> NullTranslations:
    """All catalogs of ``lang`` merged into one translations object (English: identity)."""
    merged: NullTranslations = NullTranslations()
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        compiled = Translations(buffer, domain="messages")
        if isinstance(merged, Translations):
            merged.merge(compiled)
        else:
            merged = compiled
    return merged


def direction(lang: str) -> str:
    """``rtl`` for right-to-left languages, else ``ltr``."""
    return "rtl" if lang in RTL_LANGUAGES else "ltr"


def negotiate(accept_language: str | None, enabled: Iterable[str], default: str) -> str:
    """Pick the best enabled language from an ``Accept-Language`` header."""
    enabled = tuple(enabled)
    if accept_language:
        weighted: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")[:20]):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    continue
            weighted.append((-quality, index, tag.strip().lower()))
        for _quality, _index, tag in sorted(weighted):
            primary = tag.split("-")[0]
            if primary in enabled and _quality < 0:
                return primary
    return default if default in enabled else enabled[0]


@functools.cache
def locale(lang: str) -> Locale:
    """The Babel locale for dates and numbers."""
    return Locale.parse(lang)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here (translated when shown)."""
    return message
