"""Message extraction for the catalogs (used by ``scripts/i18n`` and the catalog test).

Each area of the product has its own catalog file; a source file belongs to the first area
whose patterns match its path (relative to the repository root).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file

DOMAINS: dict[str, tuple[str, ...]] = {
    "upload": (
        "templates/public/campaign*.html",
        "templates/public/receipt*.html",
        "templates/public/poster*.html",
        "templates/public/_upload*.html",
        "aggregator/web/routes/participate*.py",
        "aggregator/services/uploads*.py",
        "aggregator/services/poster*.py",
        "aggregator/static/js/upload*.js",
    ),
    "moderation": (
        "templates/moderation/*",
        "templates/admin/*",
        "templates/auth/*",
        "aggregator/web/routes/moderation*.py",
        "aggregator/web/routes/admin*.py",
        "aggregator/web/routes/auth*.py",
        "aggregator/web/auth*.py",
    ),
    "slideshow": (
        "templates/slideshow/*",
        "templates/hosts/*",
        "aggregator/web/routes/slideshow*.py",
        "aggregator/web/routes/hosts*.py",
        "aggregator/services/slideshows*.py",
        "aggregator/services/export*.py",
    ),
    "gallery": (
        "templates/gallery/*",
        "aggregator/web/routes/gallery*.py",
    ),
    "core": ("templates/*", "aggregator/*"),
}

METHODS = {".py": "python", ".html": "jinja2", ".txt": "jinja2"}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "false"}


def domain_of(relative: str) -> str | None:
    """The catalog a source file's messages go to."""
    for domain, patterns in DOMAINS.items():
        if any(fnmatch.fnmatch(relative, p) for p in patterns):
            return domain
    return None


def _sources(root: Path) -> Iterator[Path]:
    for folder in ("aggregator", "templates"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in METHODS and path.is_file() and "migrations" not in path.parts:
                yield path


def extract(root: Path) -> dict[str, Catalog]:
    """Templates (POT catalogs) per domain from the sources under ``root``."""
    catalogs = {domain: Catalog(project="we-remember", fuzzy=False) for domain in DOMAINS}
    for path in _sources(root):
        relative = path.relative_to(root).as_posix()
        domain = domain_of(relative)
        if domain is None:
            continue
        method = METHODS[path.suffix]
        options = JINJA_OPTIONS if method == "jinja2" else {}
        method_name = "jinja2.ext:babel_extract" if method == "jinja2" else "python"
        for lineno, message, comments, context in extract_from_file(
            method_name, str(path), keywords=KEYWORDS, options=options
        ):
            catalogs[domain].add(
                message, locations=[(relative, lineno)], auto_comments=comments, context=context
            )
    return catalogs
