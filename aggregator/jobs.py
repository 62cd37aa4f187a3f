"""Plain job functions. The scheduler and ``aggregator collect --once`` call the same ones.

``run_source`` is one collection of one source: ask the collector for pages, fetch and process
every image outside any transaction, then store each page's items *and* its cursor in one
transaction. A failure anywhere is caught here, recorded on the Source (last error, backoff),
and never escapes into the scheduler.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import httpx
from anyio.to_thread import run_sync
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from aggregator import i18n
from aggregator.collectors import get_collector
from aggregator.collectors.base import CollectedItem, Collector, CollectResult, SourceSpec
from aggregator.collectors.fetch import SafeAsyncClient, fetch_remote, make_safe_client
from aggregator.collectors.html import html_to_text, sanitize_html
from aggregator.collectors.http import make_api_client, redact_text
from aggregator.config import Settings
from aggregator.db import session_scope
from aggregator.errors import CollectorError
from aggregator.media import ImageRejected, MediaLimits, process_image
from aggregator.media.storage import LocalStorage, Storage
from aggregator.models import (
    Campaign,
    Origin,
    Source,
    utcnow,
)
from aggregator.services.campaigns import localized
from aggregator.services.ingest import (
    MAX_IMAGES_PER_POST,
    Incoming,
    IncomingImage,
    ingest_page,
    media_limits,
)

log = logging.getLogger(__name__)

MAX_PAGES_PER_RUN = 25
MAX_BACKOFF = 3600
# Public posts with the campaign hashtag, and photos sent to the campaign's bot after its
# consent message, may be projected and shown in the web gallery; the archive needs an
# explicit yes, which only the upload form asks for.
COLLECTED_CONSENT = ("projection", "web")


@dataclass
class RunReport:
    """What one run of one source did."""

    source_id: int
    kind: str
    ok: bool = True
    new_items: int = 0
    seen_items: int = 0
    skipped_images: int = 0
    error: str | None = None

    def summary(self) -> str:
        """One line for people."""
        head = f"source {self.source_id} ({self.kind}): "
        if not self.ok:
            return head + f"failed: {self.error}"
        return head + (
            f"{self.new_items} new, {self.seen_items} already known"
            + (f", {self.skipped_images} image(s) refused" if self.skipped_images else "")
        )


@dataclass
class JobContext:
    """What jobs need: settings, engine, storage and the two HTTP clients."""

    settings: Settings
    engine: Engine
    storage: Storage
    api_http: httpx.AsyncClient
    media_http: SafeAsyncClient
    # One collector instance per kind for the life of the process: some keep a login
    # session between runs (Bluesky), which a fresh instance per run would throw away.
    collectors: dict[str, Collector] = field(default_factory=dict)
    # Image processing threads: Pillow releases the GIL while decoding and resizing.
    image_workers: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(os.cpu_count() or 1)
    )

    def collector(self, kind: str) -> Collector:
        """The process-wide collector for ``kind``."""
        if kind not in self.collectors:
            self.collectors[kind] = get_collector(kind)
        return self.collectors[kind]

    @property
    def limits(self) -> MediaLimits:
        """Media limits from settings."""
        return media_limits(self.settings)


def make_job_context(settings: Settings, engine: Engine) -> JobContext:
    """Build clients and storage for jobs run outside the web app."""
    return JobContext(
        settings=settings,
        engine=engine,
        storage=LocalStorage(settings.effective_media_dir),
        api_http=make_api_client(),
        media_http=make_safe_client(settings.allow_networks),
    )


def source_spec(source: Source, campaign: Campaign) -> SourceSpec:
    """The collector's view of a source (hashtags default to the campaign's)."""
    hashtags = tuple(source.config.get("hashtags") or campaign.hashtags)
    welcome = {}
    for lang in ("en", "ru", "kk"):
        text = localized(campaign, lang)
        gettext = i18n.translations(lang).gettext
        welcome[lang] = "\n\n".join(
            [
                text.name,
                text.description,
                gettext(
                    "Send a photo of yourself with your sign. A moderator looks at every "
                    "photo before it is shown."
                ),
                gettext("By sending a photo you agree:"),
                f"• {text.consent['projection']}\n• {text.consent['web']}",
            ]
        ).strip()
    return SourceSpec(
        id=source.id,  # type: ignore[arg-type]
        kind=source.kind,
        config=dict(source.config),
        hashtags=hashtags,
        welcome=welcome,
    )


async def _prepare(ctx: JobContext, item: CollectedItem, report: RunReport) -> Incoming | None:
    """Fetch and process an item's images; None when none of them is usable."""
    images: list[IncomingImage] = []
    for media in item.media[:MAX_IMAGES_PER_POST]:
        try:
            data = media.data
            if data is None and media.url:
                data = (
                    await fetch_remote(
                        media.url,
                        http=ctx.media_http,
                        max_bytes=ctx.settings.upload_max_bytes,
                    )
                ).data
            if data is None:
                continue
            processed = await run_sync(
                functools.partial(process_image, data, limits=ctx.limits),
                limiter=ctx.image_workers,
            )
        except (ImageRejected, CollectorError) as exc:
            # One bad image must not lose the post or the run; it is counted and logged.
            report.skipped_images += 1
            log.info(
                "source %s: image of %s skipped: %s",
                report.source_id,
                item.external_id,
                redact_text(exc.message),
            )
            continue
        images.append(IncomingImage(processed, media.alt_text or ""))
    if not images:
        return None
    text = html_to_text(item.text) if item.text_is_html else item.text
    return Incoming(
        origin=Origin.collected,
        images=images,
        external_id=item.external_id,
        remote_id=getattr(item, "remote_id", None),
        url=item.url,
        author_name=item.author_name,
        author_handle=item.author_handle,
        author_url=item.author_url,
        text=text,
        html=sanitize_html(item.text) if item.text_is_html else None,
        language=item.language,
        hashtags=item.hashtags,
        consent=COLLECTED_CONSENT,
        sensitive=item.sensitive,
        content_warning=item.content_warning,
        posted_at=item.created_at,
    )


async def _fetch_page(
    ctx: JobContext,
    collector: Collector,
    spec: SourceSpec,
    cursor: Mapping[str, Any] | None,
    report: RunReport,
) -> tuple[CollectResult, Prepared]:
    """One page from the remote after ``cursor``, its images fetched and processed."""
    result: CollectResult = await collector.collect(spec, http=ctx.api_http, cursor=cursor)
    return result, await _prepare_all(ctx, result.items, report)


Prepared = list[tuple[CollectedItem, Incoming | None]]


@dataclass
class _Ahead:
    """The next page, fetched while the current one is stored, or why it could not be."""

    page: tuple[CollectResult, Prepared] | None = None
    error: Exception | None = None

    async def fetch(
        self,
        ctx: JobContext,
        collector: Collector,
        spec: SourceSpec,
        cursor: Mapping[str, Any] | None,
        report: RunReport,
    ) -> None:
        try:
            self.page = await _fetch_page(ctx, collector, spec, cursor, report)
        except Exception as exc:  # raised by the run once the current page is safely stored
            self.error = exc


async def _prepare_all(
    ctx: JobContext, items: Sequence[CollectedItem], report: RunReport
) -> list[tuple[CollectedItem, Incoming | None]]:
    """Fetch and process a page's items concurrently, one image worker per core."""
    prepared: list[Incoming | None] = [None] * len(items)

    async def one(index: int, item: CollectedItem) -> None:
        prepared[index] = await _prepare(ctx, item, report)

    async with anyio.create_task_group() as group:
        for index, item in enumerate(items):
            group.start_soon(one, index, item)
    return list(zip(items, prepared, strict=True))


def _store_page(
    ctx: JobContext,
    source_id: int,
    prepared: Sequence[tuple[CollectedItem, Incoming | None]],
    cursor: dict[str, Any] | None,
    report: RunReport,
) -> list[tuple[CollectedItem, str | None]]:
    """One transaction: the page's items and the cursor after them."""
    receipts: list[tuple[CollectedItem, str | None]] = []
    with session_scope(ctx.engine) as session:
        source = session.get(Source, source_id)
        campaign = session.get(Campaign, source.campaign_id) if source else None
        if source is None or campaign is None:
            raise CollectorError("the source was deleted while it was collecting")
        usable = [(item, incoming) for item, incoming in prepared if incoming is not None]
        results = ingest_page(
            session=session,
            storage=ctx.storage,
            campaign=campaign,
            incomings=[incoming for _item, incoming in usable],
            source=source,
            with_receipt=[item.reply_context is not None for item, _incoming in usable],
            near_distance=ctx.settings.near_duplicate_distance,
        )
        for (item, _incoming), result in zip(usable, results, strict=True):
            if result.created:
                report.new_items += 1
                receipts.append((item, result.receipt_token))
            else:
                report.seen_items += 1
        source.items_collected += sum(result.created for result in results)
        if cursor is not None:
            source.cursor = dict(cursor)
        session.add(source)
    return receipts


async def _acknowledge(
    ctx: JobContext,
    collector: Any,
    spec: SourceSpec,
    receipts: list[tuple[CollectedItem, str | None]],
) -> None:
    """Tell a bot's senders that their photo arrived, in their language, with a receipt link."""
    if not hasattr(collector, "acknowledge"):
        return
    base = ctx.settings.public_base_url.rstrip("/")
    for item, token in receipts:
        if item.reply_context is None or token is None:
            continue
        if item.reply_context.get("chat_type", "private") != "private":
            # In a group everyone would see the link, and the link can withdraw the photo.
            continue
        lang = str(item.reply_context.get("language") or "en")
        lang = lang if lang in ("en", "ru", "kk") else "en"
        gettext = i18n.translations(lang).gettext
        text = "\n\n".join(
            [
                gettext(
                    "Thank you. Your photo will be looked at by a moderator before it is shown."
                ),
                gettext("See its status or withdraw it at any time:") + f" {base}/r/{token}",
            ]
        )
        try:
            await collector.acknowledge(
                spec, http=ctx.api_http, reply_context=item.reply_context, text=text
            )
        except CollectorError as exc:  # the photo is safely stored; a lost reply is not fatal
            log.warning("source %s: could not reply: %s", spec.id, redact_text(exc.message))


async def run_source(ctx: JobContext, source_id: int, *, force: bool = False) -> RunReport:
    """Collect one source now (unless it is backing off and not forced)."""
    source, campaign = await run_sync(lambda: _load(ctx.engine, source_id))
    report = RunReport(source_id=source_id, kind=source.kind if source else "?")
    if source is None or campaign is None:
        report.ok, report.error = False, "no such source"
        return report
    if not force and source.next_run_at and source.next_run_at > utcnow():
        report.error = "backing off"
        return report
    spec = source_spec(source, campaign)
    try:
        collector = ctx.collector(source.kind)
        cursor = source.cursor
        page = await _fetch_page(ctx, collector, spec, cursor, report)
        for number in range(1, MAX_PAGES_PER_RUN + 1):
            result, prepared = page
            last = not result.more or number == MAX_PAGES_PER_RUN
            saved = dict(result.cursor) if result.cursor is not None else None  # None: keep
            cursor = saved or cursor
            # The next page is fetched and processed while this one is stored: otherwise the
            # image workers would stand idle through every page's writes and commit.
            ahead = _Ahead()
            try:
                async with anyio.create_task_group() as group:
                    if not last:
                        group.start_soon(ahead.fetch, ctx, collector, spec, cursor, report)
                    receipts = await run_sync(_store_page, ctx, source_id, prepared, saved, report)
                    await _acknowledge(ctx, collector, spec, receipts)
            except ExceptionGroup as group_error:  # only storing can fail here (fetch keeps
                raise group_error.exceptions[0] from None  # its error), so raise it as itself
            if ahead.error is not None:
                raise ahead.error
            if ahead.page is None:
                break
            page = ahead.page
        await run_sync(_record, ctx.engine, source_id, None, result.retry_after)
    except CollectorError as exc:
        report.ok, report.error = False, redact_text(exc.message)
        await run_sync(_record, ctx.engine, source_id, report.error, exc.retry_after)
    except Exception as exc:  # a bug in one collector must not stop the scheduler
        log.exception("source %s failed", source_id)
        report.ok, report.error = False, redact_text(f"{type(exc).__name__}: {exc}")
        await run_sync(_record, ctx.engine, source_id, report.error, None)
    return report


def _load(engine: Engine, source_id: int) -> tuple[Source | None, Campaign | None]:
    with Session(engine, expire_on_commit=False) as session:
        source = session.get(Source, source_id)
        campaign = session.get(Campaign, source.campaign_id) if source else None
        return source, campaign


def _record(engine: Engine, source_id: int, error: str | None, retry_after: float | None) -> None:
    """Save health after a run: success resets the failure count, failure backs off."""
    with session_scope(engine) as session:
        source = session.get(Source, source_id)
        if source is None:
            return
        now = utcnow()
        source.last_run_at = now
        delay: float = 0
        if error is None:
            source.last_success_at = now
            source.last_error = None
            source.consecutive_failures = 0
        else:
            source.last_error = error[:2000]
            source.consecutive_failures += 1
            doublings = source.consecutive_failures - 1
            delay = min(MAX_BACKOFF, source.interval_seconds * 2**doublings)
        if retry_after:
            delay = max(delay, min(retry_after, MAX_BACKOFF))
        source.next_run_at = now + timedelta(seconds=delay) if delay else None
        session.add(source)


async def collect_once(
    settings: Settings, engine: Engine, *, source_id: int | None = None
) -> list[RunReport]:
    """Run every enabled source (or one) once, forcing past any backoff."""
    with Session(engine) as session:
        query = select(Source.id).order_by(col(Source.id))
        if source_id is not None:
            query = query.where(Source.id == source_id)
        else:
            query = query.where(col(Source.enabled).is_(True))
        ids = [i for i in session.exec(query).all() if i is not None]
    ctx = make_job_context(settings, engine)
    try:
        return [await run_source(ctx, i, force=True) for i in ids]
    finally:
        await ctx.api_http.aclose()
        await ctx.media_http.aclose()
