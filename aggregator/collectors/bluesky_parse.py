"""Pure conversion of Bluesky ``postView`` objects into ``CollectedItem``s.

Facts from reference/sources.md §2: facet offsets are UTF-8 byte offsets; images live in
``images#view``, in ``recordWithMedia#view`` (under ``media``) and in ``gallery#view`` (whose
items say ``thumbnail`` where the others say ``thumb``); ``createdAt`` is client-declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aggregator.collectors.base import CollectedItem, CollectedMedia

WEB = "https://bsky.app"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
IMAGES_VIEW = "app.bsky.embed.images#view"
GALLERY_VIEW = "app.bsky.embed.gallery#view"
RECORD_WITH_MEDIA_VIEW = "app.bsky.embed.recordWithMedia#view"
# The author asked not to be shown to logged-out viewers; a public wall must honour that.
OPT_OUT = "!no-unauthenticated"
HIDDEN = frozenset({"!hide", "!takedown", OPT_OUT})
SENSITIVE = frozenset({"porn", "sexual", "nudity", "graphic-media", "gore", "!warn"})


def utf8_slice(text: str, start: int, end: int) -> str:
    """Cut ``text`` by UTF-8 byte offsets, the unit of AT Protocol facet indexes."""
    return text.encode("utf-8")[start:end].decode("utf-8", errors="replace")


def parse_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from an AT Protocol datetime string, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """The form Bluesky itself sends: UTC, milliseconds, ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sort_at(post: Mapping[str, Any]) -> datetime | None:
    """When the post sorts in ``sort=latest`` results: the earlier of createdAt and indexedAt.

    ``createdAt`` is whatever the client claimed (it can lie into the future), so it never
    counts later than the moment the AppView indexed the post.
    """
    record = _map(post.get("record"))
    indexed = parse_datetime(post.get("indexedAt"))
    created = parse_datetime(record.get("createdAt"))
    if indexed and created:
        return min(indexed, created)
    return indexed or created


def hashtags(record: Mapping[str, Any]) -> tuple[str, ...]:
    """Hashtags from ``#tag`` facets and ``record.tags``, de-duplicated case-insensitively."""
    text = _str(record.get("text"))
    found: dict[str, str] = {}

    def add(tag: Any) -> None:
        if isinstance(tag, str) and tag.strip().lstrip("#"):
            tag = tag.strip().lstrip("#")
            found.setdefault(tag.casefold(), tag)

    for facet in _dicts(record.get("facets")):
        index = _map(facet.get("index"))
        for feature in _dicts(facet.get("features")):
            if feature.get("$type") != TAG_FEATURE:
                continue
            if feature.get("tag"):
                add(feature["tag"])
            elif isinstance(index.get("byteStart"), int) and isinstance(index.get("byteEnd"), int):
                add(utf8_slice(text, index["byteStart"], index["byteEnd"]))
    for tag in record.get("tags") or ():
        add(tag)
    return tuple(found.values())


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> Iterable[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _image_views(embed: Any) -> list[Mapping[str, Any]]:
    if not isinstance(embed, Mapping):
        return []
    kind = embed.get("$type")
    if kind == IMAGES_VIEW:
        return list(_dicts(embed.get("images")))
    if kind == GALLERY_VIEW:
        # Gallery items may one day include video; keep only image items.
        return [
            i
            for i in _dicts(embed.get("items"))
            if str(i.get("$type", "#viewImage")).endswith("#viewImage")
        ]
    if kind == RECORD_WITH_MEDIA_VIEW:
        return _image_views(embed.get("media"))
    return []


def _blob_cid(url: str) -> str | None:
    # https://cdn.bsky.app/img/feed_fullsize/plain/<did>/<cid>@jpeg
    last = url.rstrip("/").rsplit("/", 1)[-1]
    cid = last.split("@", 1)[0]
    return cid or None


def media(embed: Any) -> tuple[CollectedMedia, ...]:
    """Full-size images of a post's embed view, with their alt text."""
    out: list[CollectedMedia] = []
    for view in _image_views(embed):
        url = view.get("fullsize") or view.get("thumb") or view.get("thumbnail")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            continue
        alt = view.get("alt")
        fmt = url.rsplit("@", 1)[-1] if "@" in url.rsplit("/", 1)[-1] else ""
        out.append(
            CollectedMedia(
                url=url,
                alt_text=alt.strip() if isinstance(alt, str) and alt.strip() else None,
                external_id=_blob_cid(url),
                declared_type={"jpeg": "image/jpeg", "webp": "image/webp"}.get(fmt),
            )
        )
    return tuple(out)


def _label_values(labels: Any) -> set[str]:
    return {str(lab.get("val")) for lab in _dicts(labels) if lab.get("val")}


def post_url(post: Mapping[str, Any]) -> str | None:
    """The bsky.app link of a post (by handle, or by DID when the handle is invalid)."""
    uri = post.get("uri")
    author = _map(post.get("author"))
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    rkey = uri.rstrip("/").rsplit("/", 1)[-1]
    handle = author.get("handle")
    who = handle if isinstance(handle, str) and handle and handle != "handle.invalid" else None
    who = who or author.get("did") or uri[5:].split("/", 1)[0]
    return f"{WEB}/profile/{who}/post/{rkey}"


def item_from_post(post: Mapping[str, Any]) -> CollectedItem | None:
    """A ``CollectedItem`` for a post with images, or None (no image, hidden, opted out)."""
    uri = post.get("uri")
    record = post.get("record")
    author = post.get("author")
    if not isinstance(uri, str) or not isinstance(record, Mapping):
        return None
    if not isinstance(author, Mapping) or OPT_OUT in _label_values(author.get("labels")):
        return None
    self_labels = _map(record.get("labels"))
    labels = _label_values(post.get("labels")) | _label_values(self_labels.get("values"))
    if labels & HIDDEN:
        return None
    images = media(post.get("embed"))
    if not images:
        return None
    handle = author.get("handle") if isinstance(author.get("handle"), str) else None
    name = author.get("displayName")
    langs = record.get("langs")
    warn = sorted(labels & SENSITIVE)
    return CollectedItem(
        external_id=uri,
        remote_id=uri,
        url=post_url(post),
        author_name=name.strip() if isinstance(name, str) and name.strip() else (handle or ""),
        author_handle=handle,
        author_url=f"{WEB}/profile/{handle or author.get('did')}",
        text=_str(record.get("text")),
        language=langs[0]
        if isinstance(langs, list) and langs and isinstance(langs[0], str)
        else None,
        created_at=sort_at(post),
        hashtags=hashtags(record),
        media=images,
        sensitive=bool(warn),
        content_warning=", ".join(warn) if warn else None,
    )
