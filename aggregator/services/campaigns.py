"""Campaigns and sources: creation with validation, and texts in a visitor's language."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import bindparam, event
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from aggregator.db import PerEngine, engine_of
from aggregator.errors import InvalidInput, NotFound
from aggregator.models import CONSENT_SCOPES, Campaign, ModerationMode, Source

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HASHTAG_RE = re.compile(r"^\w{1,100}$")
SOURCE_KINDS = ("mastodon", "bluesky", "rss", "telegram")
# How long a process answers uploads from its copy of a campaign (see kept_campaign).
KEEP_SECONDS: Final = 2.0

DEFAULT_CONSENT = {
    "projection": "My photo may be shown at commemorative events.",
    "web": "My photo may appear in the public online gallery.",
    "archive": "My photo may be kept in the memorial's archive.",
}


@dataclass(frozen=True)
class CampaignText:
    """A campaign's texts resolved for one language (falling back to the defaults)."""

    name: str
    description: str
    sign_text: str
    consent: dict[str, str]


def localized(campaign: Campaign, lang: str) -> CampaignText:
    """The campaign's name, description, sign text and consent wording in ``lang``."""
    own: dict[str, Any] = (campaign.translations or {}).get(lang) or {}
    consent = {**DEFAULT_CONSENT, **(campaign.consent_texts or {}), **(own.get("consent") or {})}
    return CampaignText(
        name=own.get("name") or campaign.name,
        description=own.get("description") or campaign.description,
        sign_text=own.get("sign_text") or campaign.sign_text,
        consent={scope: consent[scope] for scope in CONSENT_SCOPES},
    )


def normalize_hashtag(tag: str) -> str:
    """``#WeRemember`` → ``weremember``; raises InvalidInput for anything that is not a tag."""
    cleaned = tag.strip().lstrip("#").casefold()
    if not HASHTAG_RE.match(cleaned):
        raise InvalidInput(f"Not a hashtag: {tag!r}", field="hashtags")
    return cleaned


def create_campaign(
    *,
    session: Session,
    slug: str,
    name: str,
    hashtags: list[str],
    description: str = "",
    sign_text: str = "We Remember",
    languages: list[str] | None = None,
    translations: dict[str, Any] | None = None,
    upload_opens_at: datetime | None = None,
    upload_closes_at: datetime | None = None,
    moderation_mode: ModerationMode = ModerationMode.manual,
) -> Campaign:
    """Create a campaign; slug, name and hashtags are validated."""
    if not SLUG_RE.match(slug):
        raise InvalidInput(
            "The short name may use lower-case letters, digits and dashes (up to 63).",
            field="slug",
        )
    if not name.strip():
        raise InvalidInput("The campaign needs a name.", field="name")
    if session.exec(select(Campaign).where(Campaign.slug == slug)).first():
        raise InvalidInput(f"A campaign with the short name {slug!r} exists.", field="slug")
    if upload_opens_at and upload_closes_at and upload_closes_at <= upload_opens_at:
        raise InvalidInput("Uploads must close after they open.", field="upload_closes_at")
    campaign = Campaign(
        slug=slug,
        name=name.strip(),
        description=description,
        sign_text=sign_text,
        hashtags=[normalize_hashtag(t) for t in hashtags],
        languages=languages or ["en", "ru", "kk"],
        translations=translations or {},
        upload_opens_at=upload_opens_at,
        upload_closes_at=upload_closes_at,
        moderation_mode=moderation_mode,
    )
    session.add(campaign)
    session.commit()
    session.refresh(campaign)
    return campaign


@functools.cache
def _by_slug() -> SelectOfScalar[Campaign]:
    # Built once: every public page starts here, and building the statement cost more
    # than running it.
    return select(Campaign).where(col(Campaign.slug) == bindparam("slug"))


def get_campaign(*, session: Session, slug: str) -> Campaign:
    """The campaign with ``slug``, or NotFound."""
    campaign = session.exec(_by_slug(), params={"slug": slug}).first()
    if campaign is None:
        raise NotFound(f"There is no campaign {slug!r}.")
    return campaign


# Per database (engine): slug → (monotonic time read, detached campaign).
_KEPT: PerEngine[dict[str, tuple[float, Campaign]]] = PerEngine(lambda _engine: {})


def kept_campaign(*, session: Session, slug: str) -> Campaign:
    """``get_campaign`` for the upload path: a copy kept up to ``KEEP_SECONDS`` per process.

    Every upload checks its campaign (and its window) before reading the photos; under 32
    concurrent uploads that lookup, a connection taken and a transaction opened for it in a
    worker thread, cost a tenth of the upload throughput (bench_upload's load, paired runs:
    1.37× the minimal endpoint with it, 1.24× without). The copy is detached and shared:
    read it, never change it. A change to any campaign saved in this process clears every
    copy at once (and the upload worker's, before its next upload: ``kept_generation``);
    other processes see it within ``KEEP_SECONDS``. A missing campaign is
    never kept. (The commit stamp that keeps public pages, ``commit_stamp``, cannot decide
    here: every upload's rate count is a commit.)
    """
    kept = _KEPT(engine_of(session))
    now = time.monotonic()
    found = kept.get(slug)
    if found is not None and now - found[0] < KEEP_SECONDS:
        return found[1]
    campaign = get_campaign(session=session, slug=slug)
    session.expunge(campaign)
    kept[slug] = (now, campaign)
    return campaign


@event.listens_for(Campaign, "after_insert")
@event.listens_for(Campaign, "after_update")
@event.listens_for(Campaign, "after_delete")
def _forget_kept(*_args: Any) -> None:
    global _kept_generation
    _kept_generation += 1
    forget_kept()


_kept_generation = 0


def kept_generation() -> int:
    """How many times a campaign was saved in this process (each let every kept copy go)."""
    return _kept_generation


def forget_kept() -> None:
    """Let every kept campaign go (the next upload reads its campaign again)."""
    _KEPT.clear()


def create_source(
    *,
    session: Session,
    campaign: Campaign,
    kind: str,
    config: dict[str, Any],
    interval_seconds: int = 300,
    name: str = "",
) -> Source:
    """Add a collector to a campaign; the kind's required settings are checked here."""
    if kind not in SOURCE_KINDS:
        raise InvalidInput(f"Unknown source kind {kind!r}.", field="kind")
    if not 30 <= interval_seconds <= 86400:
        raise InvalidInput("The interval must be between 30 s and one day.", field="interval")
    required = {"mastodon": ("url",), "bluesky": (), "rss": ("url",), "telegram": ("token",)}
    for key in required[kind]:
        if not config.get(key):
            raise InvalidInput(f"A {kind} source needs --{key}.", field=key)
    url = config.get("url")
    if url is not None and not re.match(r"^https?://[^\s/]+", str(url)):
        raise InvalidInput("The URL must start with http:// or https://.", field="url")
    if config.get("hashtags"):
        config = {**config, "hashtags": [normalize_hashtag(t) for t in config["hashtags"]]}
    source = Source(
        campaign_id=campaign.id,  # type: ignore[arg-type]
        kind=kind,
        config=config,
        interval_seconds=interval_seconds,
        name=name or f"{kind}: {url or ', '.join(config.get('hashtags') or campaign.hashtags)}",
    )
    session.add(source)
    session.commit()
    session.refresh(source)
    return source
