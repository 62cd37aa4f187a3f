"""Catalogs: every message extracted from the sources is translated into Russian and Kazakh."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from aggregator.i18n import LOCALE_DIR, negotiate, translations
from aggregator.i18n_extract import DOMAINS, extract

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def extracted() -> dict[str, set[str]]:
    return {domain: {m.id for m in catalog if m.id} for domain, catalog in extract(ROOT).items()}  # type: ignore[misc]


@pytest.mark.parametrize("lang", ["ru", "kk"])
@pytest.mark.parametrize("domain", list(DOMAINS))
def test_every_message_is_translated(
    lang: str, domain: str, extracted: dict[str, set[str]]
) -> None:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"
    wanted = extracted[domain]
    if not wanted:
        return
    assert path.exists(), f"run scripts/i18n: {path} is missing"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}  # type: ignore[misc]
    untranslated = sorted(str(m) for m in wanted - translated)
    assert untranslated == [], f"{lang}/{domain}.po lacks translations (run scripts/i18n)"


def test_translations_are_used() -> None:
    assert translations("ru").gettext("Page not found") == "Страница не найдена"
    assert translations("kk").gettext("Page not found") == "Бет табылмады"
    assert translations("en").gettext("Page not found") == "Page not found"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("ru;q=0.1,kk;q=0.9", "kk"),
        ("*", "en"),
        ("ru;q=abc,kk", "kk"),
        ("en;q=0", "en"),
        ("RU-ru", "ru"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header, ("en", "ru", "kk"), "en") == expected
