"""The Atom feed of a campaign's public photos, with Media RSS image elements.

Built as text with every value escaped (quicker than a tree, and feeds are polled often).
Characters XML 1.0 forbids (control codes that can arrive in collected posts) are removed
first, because one of them makes the whole feed unreadable for every subscriber.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from aggregator.media.storage import CONTENT_TYPES
from aggregator.models import Campaign
from aggregator.services.gallery import Links, PublicItem

ATOM: Final = "http://www.w3.org/2005/Atom"
MEDIA: Final = "http://search.yahoo.com/mrss/"
_INVALID_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: str | None) -> str:
    """``value`` without the characters XML 1.0 cannot carry."""
    return _INVALID_XML.sub("", value or "")


def _text(value: str | None) -> str:
    return escape(xml_text(value))


def _attr(value: str | None) -> str:
    return quoteattr(xml_text(value))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _type(key: str) -> str:
    return CONTENT_TYPES.get(key[key.rfind(".") :], "image/jpeg")


def _title(item: PublicItem, campaign: Campaign) -> str:
    who = item.author or campaign.sign_text
    return f"{who} · {item.city}" if item.city else who


def _entry(item: PublicItem, campaign: Campaign, links: Links) -> str:
    page = links.photo(campaign.slug, item.public_id)
    when = _iso(item.posted_at)
    out = [
        f"<entry><id>{_text(page)}</id><title>{_text(_title(item, campaign))}</title>",
        f"<updated>{when}</updated><published>{when}</published>",
        f"<author><name>{_text(item.author or campaign.name)}</name></author>",
        f'<link rel="alternate" type="text/html" href={_attr(page)}/>',
    ]
    if item.source_url:
        out.append(f'<link rel="via" type="text/html" href={_attr(item.source_url)}/>')
    if item.caption:
        out.append(f'<summary type="text">{_text(item.caption)}</summary>')
    html_parts = []
    for image in item.images:
        slide, kind = links.media(image.slide_key), _type(image.slide_key)
        length = f' length="{image.slide_bytes}"' if image.slide_bytes else ""
        out.append(f'<link rel="enclosure" type="{kind}" href={_attr(slide)}{length}/>')
        out.append(
            f'<media:content url={_attr(slide)} type="{kind}" medium="image" '
            f'width="{image.slide_width}" height="{image.slide_height}">'
        )
        if image.alt:
            out.append(f'<media:description type="plain">{_text(image.alt)}</media:description>')
        out.append(
            f"<media:thumbnail url={_attr(links.media(image.thumb_key))} "
            f'width="{image.thumb_width}" height="{image.thumb_height}"/></media:content>'
        )
        html_parts.append(
            f'<p><img src="{html.escape(slide)}" alt="{html.escape(xml_text(image.alt))}" '
            f'width="{image.slide_width}" height="{image.slide_height}"></p>'
        )
    if item.caption:
        html_parts.append(f"<p>{html.escape(xml_text(item.caption))}</p>")
    out.append(f'<content type="html">{escape("".join(html_parts))}</content></entry>')
    return "".join(out)


def atom_feed(
    campaign: Campaign, items: Sequence[PublicItem], links: Links, *, updated: datetime
) -> bytes:
    """The feed document (UTF-8 bytes) for ``items`` of ``campaign``."""
    feed_url, gallery_url = links.feed(campaign.slug), links.gallery(campaign.slug)
    head = [
        "<?xml version='1.0' encoding='utf-8'?>\n",
        f'<feed xmlns="{ATOM}" xmlns:media="{MEDIA}">',
        f"<id>{_text(feed_url)}</id><title>{_text(campaign.name)}</title>",
    ]
    if campaign.description:
        head.append(f"<subtitle>{_text(campaign.description)}</subtitle>")
    head += [
        f"<updated>{_iso(updated)}</updated>",
        f'<link rel="self" type="application/atom+xml" href={_attr(feed_url)}/>',
        f'<link rel="alternate" type="text/html" href={_attr(gallery_url)}/>',
        "<generator>We Remember</generator>",
    ]
    body = [_entry(item, campaign, links) for item in items]
    return ("".join(head) + "".join(body) + "</feed>").encode("utf-8")
