"""The Atom feed of a campaign's public photos, with Media RSS image elements.

Built with ElementTree so every value is escaped; characters XML 1.0 forbids (control codes
that can arrive in collected posts) are removed first, because one of them makes the whole
feed unreadable for every subscriber.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final
from xml.etree import ElementTree as ET

from aggregator.media.storage import CONTENT_TYPES
from aggregator.models import Campaign
from aggregator.services.gallery import Links, PublicItem

ATOM: Final = "http://www.w3.org/2005/Atom"
MEDIA: Final = "http://search.yahoo.com/mrss/"
_INVALID_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

ET.register_namespace("", ATOM)
ET.register_namespace("media", MEDIA)


def xml_text(value: str | None) -> str:
    """``value`` without the characters XML 1.0 cannot carry."""
    return _INVALID_XML.sub("", value or "")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _type(key: str) -> str:
    return CONTENT_TYPES.get(key[key.rfind(".") :], "image/jpeg")


def _title(item: PublicItem, campaign: Campaign) -> str:
    who = item.author or campaign.sign_text
    return f"{who} · {item.city}" if item.city else who


def _entry(feed: ET.Element, item: PublicItem, campaign: Campaign, links: Links) -> None:
    page = links.photo(campaign.slug, item.public_id)
    entry = _sub(feed, f"{{{ATOM}}}entry")
    _sub(entry, f"{{{ATOM}}}id", page)
    _sub(entry, f"{{{ATOM}}}title", _title(item, campaign))
    _sub(entry, f"{{{ATOM}}}updated", _iso(item.posted_at))
    _sub(entry, f"{{{ATOM}}}published", _iso(item.posted_at))
    author = _sub(entry, f"{{{ATOM}}}author")
    _sub(author, f"{{{ATOM}}}name", item.author or campaign.name)
    _sub(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=page)
    if item.source_url:
        _sub(entry, f"{{{ATOM}}}link", rel="via", type="text/html", href=item.source_url)
    if item.caption:
        _sub(entry, f"{{{ATOM}}}summary", item.caption, type="text")
    parts = []
    for image in item.images:
        slide = links.media(image.slide_key)
        _sub(
            entry,
            f"{{{ATOM}}}link",
            rel="enclosure",
            type=_type(image.slide_key),
            href=slide,
            **({"length": str(image.slide_bytes)} if image.slide_bytes else {}),
        )
        content = _sub(
            entry,
            f"{{{MEDIA}}}content",
            url=slide,
            type=_type(image.slide_key),
            medium="image",
            width=str(image.slide_width),
            height=str(image.slide_height),
        )
        if image.alt:
            _sub(content, f"{{{MEDIA}}}description", image.alt, type="plain")
        _sub(
            content,
            f"{{{MEDIA}}}thumbnail",
            url=links.media(image.thumb_key),
            width=str(image.thumb_width),
            height=str(image.thumb_height),
        )
        parts.append(
            f'<p><img src="{html.escape(slide)}" alt="{html.escape(image.alt)}" '
            f'width="{image.slide_width}" height="{image.slide_height}"></p>'
        )
    if item.caption:
        parts.append(f"<p>{html.escape(item.caption)}</p>")
    _sub(entry, f"{{{ATOM}}}content", "".join(parts), type="html")


def atom_feed(
    campaign: Campaign, items: Sequence[PublicItem], links: Links, *, updated: datetime
) -> bytes:
    """The feed document (UTF-8 bytes) for ``items`` of ``campaign``."""
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, f"{{{ATOM}}}id", links.feed(campaign.slug))
    _sub(feed, f"{{{ATOM}}}title", campaign.name)
    if campaign.description:
        _sub(feed, f"{{{ATOM}}}subtitle", campaign.description)
    _sub(feed, f"{{{ATOM}}}updated", _iso(updated))
    _sub(
        feed,
        f"{{{ATOM}}}link",
        rel="self",
        type="application/atom+xml",
        href=links.feed(campaign.slug),
    )
    _sub(
        feed,
        f"{{{ATOM}}}link",
        rel="alternate",
        type="text/html",
        href=links.gallery(campaign.slug),
    )
    _sub(feed, f"{{{ATOM}}}generator", "We Remember")
    for item in items:
        _entry(feed, item, campaign, links)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
