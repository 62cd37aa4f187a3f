"""RSS 2.0 / Atom / Media RSS feeds (Flickr, Mastodon tag feeds, WordPress) and Flickr JSON feeds.

Feeds have no "since" parameter: every run returns the whole window and ingest upserts on the
entry id. A conditional GET (ETag / Last-Modified kept in the cursor) makes unchanged feeds free.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx

from aggregator.collectors.base import CollectedItem, CollectedMedia, CollectResult, SourceSpec
from aggregator.collectors.html import html_images, html_to_text
from aggregator.collectors.http import API_MAX_BYTES, request_bytes, retry_after_seconds
from aggregator.errors import CollectorError, SourceConfigError

_MRSS = ("{http://search.yahoo.com/mrss/}", "{http://search.yahoo.com/mrss}")
_ATOM = "{http://www.w3.org/2005/Atom}"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".heif", ".avif")
# Web beacons and share buttons that feeds embed as <img>.
_PIXEL_HOSTS = (
    "pixel.wp.com",
    "stats.wordpress.com",
    "feeds.wordpress.com",
    "feeds.feedburner.com",
)
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, "
    "application/json;q=0.5, */*;q=0.1"
)
# Path segments of profile pictures: Gravatar, Mastodon "accounts/avatars", Flickr buddy icons.
_AVATAR_SEGMENTS = frozenset({"avatar", "avatars", "buddyicons"})
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_JSONP = re.compile(rb"^\s*jsonFlickrFeed\((.*)\)\s*;?\s*$", re.DOTALL)
_PROFILE_POST_LINK = re.compile(r"^https?://([^/]+)/@([A-Za-z0-9_.-]+)/\w+/?$")
_FLICKR_AUTHOR = re.compile(r'\((?:"(.*)"|(.*))\)\s*$')


@dataclass
class _XmlItem:
    """What feedparser loses, read from the raw XML: per-image alt text and adult ratings."""

    has_title: bool = False
    alts: dict[str, str] = field(default_factory=dict)
    adult: bool = False


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_mrss(element: ET.Element, name: str) -> bool:
    return any(element.tag == ns + name for ns in _MRSS)


def _xml_items(data: bytes, base: str) -> dict[str, _XmlItem]:
    """Index items/entries by every id they carry (guid, id, link); {} if not well-formed XML.

    Keys and image URLs are stored raw and resolved against ``base``, as feedparser may do.
    """
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return {}
    found: dict[str, _XmlItem] = {}
    for element in root.iter():
        if _local(element.tag) not in ("item", "entry"):
            continue
        info = _XmlItem(has_title=any(_local(c.tag) == "title" for c in element))
        for node in element.iter():
            if _is_mrss(node, "rating") and (node.text or "").strip().lower() == "adult":
                info.adult = True
            if _is_mrss(node, "content") and node.get("url"):
                contents, owner = [node], node
            elif _is_mrss(node, "group"):
                # A description beside exactly one media:content in a group is its alt text.
                contents, owner = [c for c in node if _is_mrss(c, "content") and c.get("url")], node
            else:
                continue
            descriptions = [c for c in owner if _is_mrss(c, "description")]
            text = " ".join((descriptions[0].text or "").split()) if descriptions else ""
            if text and len(contents) == 1:
                raw = str(contents[0].get("url")).strip()
                info.alts.setdefault(raw, text)
                info.alts.setdefault(urljoin(base, raw), text)
        for child in element:
            name = _local(child.tag)
            key = child.get("href") if child.tag == _ATOM + "link" else child.text
            if name in ("guid", "id", "link") and key and key.strip():
                found.setdefault(key.strip(), info)
                found.setdefault(urljoin(base, key.strip()), info)
    return found


def _norm_tag(term: str) -> str:
    return unicodedata.normalize("NFKC", term).strip().lstrip("#").casefold()


def _http(url: Any, base: str) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return None
    absolute = urljoin(base, url.strip())
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def _looks_like_image(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(_IMAGE_SUFFIXES)


def _is_avatar(url: str, attrs: Mapping[str, str] | None = None) -> bool:
    parts = urlsplit(url)
    host, segments = parts.hostname or "", parts.path.lower().split("/")
    if host.endswith("gravatar.com") or _AVATAR_SEGMENTS.intersection(segments):
        return True
    return attrs is not None and "avatar" in attrs.get("class", "").lower()


def _is_decoration(url: str, attrs: Mapping[str, str]) -> bool:
    host = urlsplit(url).hostname or ""
    if host in _PIXEL_HOSTS or host.endswith(".feedburner.com") or "/emoji/" in url:
        return True
    css = attrs.get("class", "").lower()
    if "wp-smiley" in css or "emoji" in css:
        return True
    sizes = [attrs.get("width", ""), attrs.get("height", "")]
    return any(s.strip().rstrip("px").strip() in ("0", "1") for s in sizes)


def _images(entry: Any, bodies: list[str], xml: _XmlItem | None, base: str) -> list[CollectedMedia]:
    """Media RSS images, else image enclosures, else ``<img>`` in the HTML, else a thumbnail."""
    alts = xml.alts if xml else {}
    found: dict[str, CollectedMedia] = {}

    def add(url: str | None, alt: str | None = None, declared: str | None = None) -> None:
        if url and url not in found:
            found[url] = CollectedMedia(url=url, alt_text=alt or None, declared_type=declared)

    for content in entry.get("media_content") or ():
        url = _http(content.get("url"), base)
        medium, declared = content.get("medium", ""), content.get("type", "")
        is_image = medium == "image" or declared.startswith("image/")
        if (
            url
            and not _is_avatar(url)
            and (is_image or (not medium and not declared and _looks_like_image(url)))
        ):
            add(url, alts.get(content.get("url", "")) or alts.get(url), declared or None)
    if not found:
        for enclosure in entry.get("enclosures") or ():
            url, declared = _http(enclosure.get("href"), base), enclosure.get("type", "")
            if url and (declared.startswith("image/") or (not declared and _looks_like_image(url))):
                add(url, None, declared or None)
    if not found:
        for body in bodies:
            for attrs in html_images(body):
                url = _http(attrs.get("src"), base)
                if url and not _is_avatar(url, attrs) and not _is_decoration(url, attrs):
                    add(url, html.unescape(attrs.get("alt", "")).strip())
    if not found and not entry.get("media_content"):
        # A bare thumbnail is better than nothing, but never a video's poster frame.
        for thumb in entry.get("media_thumbnail") or ():
            add(_http(thumb.get("url"), base))
    return list(found.values())


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _entry_item(
    entry: Any, feed: Any, xml_items: dict[str, _XmlItem], base: str
) -> CollectedItem | None:
    external_id = entry.get("id") or entry.get("link")
    if not external_id:
        return None
    link = _http(entry.get("link"), base)
    xml = next((xml_items[k] for k in (entry.get("id"), entry.get("link")) if k in xml_items), None)
    all_alts = set(xml.alts.values()) if xml else set()
    # feedparser files media:description under content/summary (feedparser#53): never use an
    # image's alt text as the post body.
    candidates = [c.get("value", "") for c in entry.get("content") or ()] + [
        entry.get("summary", "")
    ]
    bodies = [b for b in candidates if b and " ".join(html_to_text(b).split()) not in all_alts]
    title = entry.get("title", "") if (xml is None or xml.has_title) else ""
    media = _images(entry, bodies, xml, base)
    if not media:
        return None
    text = bodies[0] if bodies else ""
    if title and title.strip() and title.strip() not in html_to_text(text):
        text = f"<p>{html.escape(title.strip())}</p>{text}"
    author = entry.get("author_detail") or {}
    name, handle = author.get("name") or entry.get("author"), None
    if not name and link and (fedi := _PROFILE_POST_LINK.match(link)):
        # Mastodon tag feeds carry no author; the status link names the account.
        name, handle = fedi.group(2), f"@{fedi.group(2)}@{fedi.group(1)}"
    rating = entry.get("media_rating") or {}
    return CollectedItem(
        external_id=str(external_id),
        url=link,
        author_name=str(name or feed.get("title") or ""),
        author_handle=handle,
        author_url=_http(author.get("href"), base),
        text=text,
        text_is_html=True,
        language=feed.get("language") or None,
        created_at=_when(entry),
        hashtags=tuple(
            dict.fromkeys(
                t for t in (_norm_tag(x.get("term") or "") for x in entry.get("tags") or ()) if t
            )
        ),
        media=tuple(media),
        sensitive=bool(xml and xml.adult) or str(rating.get("content", "")).lower() == "adult",
    )


def _flickr_json(data: bytes) -> list[CollectedItem]:
    """Flickr's ``photos_public.gne?format=json`` (JSONP unless ``nojsoncallback=1``)."""
    match = _JSONP.match(data)
    try:
        document = json.loads(match.group(1) if match else data)
    except (ValueError, RecursionError):
        raise CollectorError("the feed is neither XML nor valid JSON") from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise SourceConfigError("the JSON answer is not a Flickr feed (no 'items')")
    result: list[CollectedItem] = []
    for raw in items:
        if not isinstance(raw, dict) or not isinstance(raw.get("media"), dict):
            continue
        link, small = _http(raw.get("link"), ""), _http(raw["media"].get("m"), "")
        if not link or not small:
            continue
        # Only the 240 px "_m" size is listed; "_b" (1024 px) is what Flickr's RSS serves.
        large = re.sub(r"_m(\.\w+)$", r"_b\1", small)
        author = _FLICKR_AUTHOR.search(str(raw.get("author") or ""))
        try:
            published = datetime.fromisoformat(str(raw.get("published")).replace("Z", "+00:00"))
        except ValueError:
            published = None
        title = str(raw.get("title") or "").strip()
        text = str(raw.get("description") or "")
        if title and title not in html_to_text(text):
            text = f"<p>{html.escape(title)}</p>{text}"
        result.append(
            CollectedItem(
                external_id=link,
                url=link,
                author_name=(author.group(1) or author.group(2)) if author else "",
                text=text,
                text_is_html=True,
                created_at=published,
                hashtags=tuple(
                    dict.fromkeys(_norm_tag(t) for t in str(raw.get("tags") or "").split())
                ),
                media=(CollectedMedia(url=large),),
            )
        )
    return result


def parse_feed(data: bytes, *, url: str, content_type: str | None = None) -> list[CollectedItem]:
    """Items with images from a feed body; ``url`` resolves relative links."""
    if (content_type or "").endswith("json") or _JSONP.match(data) or data.lstrip()[:1] == b"{":
        return _flickr_json(data)
    if _ENTITY_DECLARATION.search(data):
        # No real feed declares entities; refusing them avoids expansion bombs and external
        # entities in both XML parsers (defusedxml's default policy).
        raise CollectorError("the feed declares XML entities; refused")
    # A BytesIO, never bytes or str: feedparser would treat those as a path or URL and open it.
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers={
            "content-location": url,
            "content-type": content_type or "application/xml",
        },
    )
    if not parsed.get("version") and not parsed.entries:
        raise SourceConfigError("the URL does not serve an RSS or Atom feed")
    xml_items = _xml_items(data, url)
    items: dict[str, CollectedItem] = {}
    for entry in parsed.entries:
        item = _entry_item(entry, parsed.feed, xml_items, url)
        if item is not None:
            items.setdefault(item.external_id, item)
    return list(items.values())


class RssCollector:
    """One feed URL; returns every entry with an image on each run (ingest is idempotent)."""

    kind: ClassVar[str] = "rss"

    async def collect(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        cursor: Mapping[str, Any] | None,
    ) -> CollectResult:
        """Fetch the feed (conditionally) and return its items and the new validators."""
        url = str(source.config.get("url") or "").strip()
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise SourceConfigError("the feed URL must be an http(s) URL")
        headers = {"Accept": _ACCEPT}
        if cursor and cursor.get("etag"):
            headers["If-None-Match"] = str(cursor["etag"])
        if cursor and cursor.get("last_modified"):
            headers["If-Modified-Since"] = str(cursor["last_modified"])
        response, body = await request_bytes(
            http, "GET", url, headers=headers, max_bytes=API_MAX_BYTES
        )
        status = response.status_code
        if status == 304:
            return CollectResult(items=[], cursor=None)
        if status in (401, 403, 404, 410):
            raise SourceConfigError(f"feed: HTTP {status} (check the feed URL)")
        if status != 200:
            wait = retry_after_seconds(response)
            raise CollectorError(f"feed: HTTP {status}", retry_after=wait)
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        items = parse_feed(body, url=str(response.url), content_type=content_type or None)
        validators = {
            "etag": response.headers.get("etag"),
            "last_modified": response.headers.get("last-modified"),
        }
        return CollectResult(items=items, cursor={k: v for k, v in validators.items() if v})
