"""The collector protocol: what every platform module takes and returns.

A collector is given its ``httpx.AsyncClient`` and a ``SourceSpec`` and returns plain
dataclasses. It never touches the database: the ingest service stores what it returns
and saves the returned cursor in the same transaction (DESIGN.md rules 3 and 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import httpx


@dataclass(frozen=True)
class SourceSpec:
    """What a collector needs to know about one configured source."""

    id: int
    kind: str
    # Kind-specific settings as entered by an admin (url, hashtags, token, handle, ...).
    config: Mapping[str, Any]
    # Hashtags to collect, lower-case, without '#'.
    hashtags: tuple[str, ...] = ()
    # Texts a bot may send to participants, keyed by language code ("en", "ru", "kk"):
    # the greeting for /start (with the campaign's consent text).
    welcome: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectedMedia:
    """One image of a collected post: a URL to fetch safely, or bytes already fetched."""

    url: str | None = None
    # Set when the collector had to download the file itself (e.g. a Telegram file URL
    # contains the bot token and must never leave the collector).
    data: bytes | None = None
    alt_text: str | None = None
    external_id: str | None = None
    # MIME type announced by the platform; informative only, the pipeline sniffs bytes.
    declared_type: str | None = None


@dataclass(frozen=True)
class CollectedItem:
    """One post found by a collector, in platform-neutral form."""

    # Stable id unique within the source (Mastodon: the status URI; Bluesky: the at:// URI).
    external_id: str
    # Public link a person can open, or None.
    url: str | None
    author_name: str
    author_handle: str | None = None
    author_url: str | None = None
    # Plain text as the platform gave it; may contain HTML when ``text_is_html``.
    text: str = ""
    text_is_html: bool = False
    language: str | None = None
    created_at: datetime | None = None
    hashtags: tuple[str, ...] = ()
    media: tuple[CollectedMedia, ...] = ()
    sensitive: bool = False
    content_warning: str | None = None
    # Where to send a receipt (Telegram: chat id, message id, sender's language).
    reply_context: Mapping[str, Any] | None = None
    # The post's id on the queried server when it differs from ``external_id`` (Mastodon: the
    # instance-local status id, needed to re-check the post with GET /api/v1/statuses/:id).
    remote_id: str | None = None


@dataclass(frozen=True)
class CollectResult:
    """A page of items plus the cursor to save with them (None keeps the old one)."""

    items: Sequence[CollectedItem]
    cursor: Mapping[str, Any] | None
    # True when the remote has more right now; the job asks again at once.
    more: bool = False
    # Seconds the remote asked us to wait before the next request (rate limits).
    retry_after: float | None = None


class Collector(Protocol):
    """One platform. ``collect`` must be safe to call again with the same cursor."""

    kind: ClassVar[str]

    async def collect(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        cursor: Mapping[str, Any] | None,
    ) -> CollectResult:
        """Return new items after ``cursor`` and the cursor that follows them."""
        ...
