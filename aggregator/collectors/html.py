"""Remote HTML (Mastodon content, feed bodies) made safe: plain text or a sanitised subset."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

# Enough structure for a caption; no images (they come through the media pipeline), no
# tables/forms/embeds, and no attributes except a link's href.
ALLOWED_TAGS = frozenset(
    {"p", "br", "a", "span", "strong", "b", "em", "i", "u", "ul", "ol", "li", "blockquote"}
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener ugc"

_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "pre"}
    | {"section", "article", "header", "footer", "figure", "figcaption", "table", "tr"}
)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def sanitize_html(html: str) -> str:
    """Keep text and simple formatting; links keep only ``href`` (http/https/mailto) + rel."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
        attribute_filter=_absolute_links_only,
    )


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    # Relative or protocol-relative links would resolve against our own origin (moderation
    # pages); a remote post has no business linking there.
    if tag == "a" and attribute == "href":
        return value if value.lower().startswith(("https://", "http://", "mailto:")) else None
    return value


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Source newlines are layout, not content; <br> and blocks carry the real breaks.
            self.parts.append(data.replace("\n", " "))


def html_to_text(html: str) -> str:
    """Plain text of ``html``: paragraphs become blank lines, ``<br>`` a newline, tags dropped.

    Mastodon's hidden link parts (``<span class="invisible">``) are kept so URLs stay whole.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


class _ImageFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({k: v for k, v in attrs if v is not None})


def html_images(html: str) -> list[dict[str, str]]:
    """The attributes of every ``<img>`` in ``html``, in document order."""
    finder = _ImageFinder()
    finder.feed(html)
    finder.close()
    return finder.images
