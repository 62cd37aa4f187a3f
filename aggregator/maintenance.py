"""Maintenance jobs the scheduler runs beside collection: posts deleted upstream leave the
screen, orphaned files and expired rows are swept, and moderators are told when items wait.
Plain functions of a ``JobContext``, like the collection jobs in ``aggregator.jobs``."""

from __future__ import annotations

import logging

from anyio.to_thread import run_sync
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from aggregator.collectors.http import redact_text
from aggregator.errors import CollectorError
from aggregator.jobs import JobContext, source_spec
from aggregator.media.storage import sweep_orphans
from aggregator.models import (
    Campaign,
    ExportJob,
    MediaAsset,
    Source,
    StagedPhoto,
    Submission,
    SubmissionStatus,
)
from aggregator.services.alerts import notify_waiting
from aggregator.services.ratelimit import purge_expired
from aggregator.services.takedown import withdraw
from aggregator.services.uploads_staging import sweep_staged

log = logging.getLogger(__name__)

# Approved items asked about per upstream request batch.
UPSTREAM_BATCH = 100
# A file younger than this may belong to an upload whose row is not committed yet.
SWEEP_AGE_SECONDS = 3600


async def recheck_upstream(ctx: JobContext, *, batch: int = UPSTREAM_BATCH) -> int:
    """Withdraw approved items whose post was deleted upstream; returns how many.

    Sources whose collector has no ``missing`` (RSS, Telegram) are not checked. A source that
    cannot answer is skipped this time: nothing is withdrawn on a guess.
    """
    withdrawn = 0
    sources = await run_sync(lambda: _sources_with_approved(ctx.engine))
    for source, campaign, pairs in sources:
        collector = ctx.collector(source.kind)
        missing = getattr(collector, "missing", None)
        if missing is None:
            continue
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            try:
                gone = await missing(
                    source_spec(source, campaign),
                    http=ctx.api_http,
                    external_ids=[(external, ref) for _id, external, ref in chunk],
                )
            except CollectorError as exc:
                reason = redact_text(exc.message)
                log.info("source %s: upstream check skipped: %s", source.id, reason)
                break
            for submission_id, external, _ref in chunk:
                if external in gone:
                    await run_sync(_withdraw_upstream, ctx, submission_id, source.kind)
                    withdrawn += 1
    return withdrawn


def _sources_with_approved(
    engine: Engine,
) -> list[tuple[Source, Campaign, list[tuple[int, str, str]]]]:
    with Session(engine, expire_on_commit=False) as session:
        found = []
        for source in session.exec(select(Source).where(col(Source.enabled).is_(True))).all():
            rows = session.exec(
                select(Submission.id, Submission.external_id, Submission.remote_id, Submission.url)
                .where(
                    Submission.source_id == source.id,
                    Submission.status == SubmissionStatus.approved,
                )
                .order_by(col(Submission.id))
            ).all()
            pairs = [
                (int(i), str(e), str(r or u or e)) for i, e, r, u in rows if i is not None and e
            ]
            campaign = session.get(Campaign, source.campaign_id)
            if pairs and campaign is not None:
                found.append((source, campaign, pairs))
        return found


def _withdraw_upstream(ctx: JobContext, submission_id: int, kind: str) -> None:
    with Session(ctx.engine, expire_on_commit=False) as session:
        withdraw(
            session=session,
            storage=ctx.storage,
            submission_id=submission_id,
            actor_label="upstream",
            reason=f"deleted on {kind}",
        )


def referenced_media(engine: Engine) -> set[str]:
    """Every storage key a committed row refers to (images, staged uploads, exports)."""
    with Session(engine) as session:
        keys = {
            k for styles in session.exec(select(MediaAsset.keys)).all() for k in styles.values()
        }
        for derivatives in session.exec(select(StagedPhoto.derivatives)).all():
            keys.update(str(info["key"]) for info in derivatives.values())
        keys.update(k for k in session.exec(select(ExportJob.storage_key)).all() if k is not None)
    return keys


def sweep_media(ctx: JobContext, *, older_than_seconds: float = SWEEP_AGE_SECONDS) -> list[str]:
    """Delete media files no row refers to (left by a crash), once they are old enough."""
    return sweep_orphans(
        ctx.storage, referenced=referenced_media(ctx.engine), older_than_seconds=older_than_seconds
    )


def housekeeping(ctx: JobContext) -> None:
    """Hourly: expired staged uploads, old rate-limit counters, then orphaned files."""
    with Session(ctx.engine, expire_on_commit=False) as session:
        sweep_staged(session=session, storage=ctx.storage)
        purge_expired(session)
    sweep_media(ctx)


async def send_alerts(ctx: JobContext) -> None:
    """Every minute: tell moderators when items have waited too long (if configured)."""
    await notify_waiting(ctx.settings, ctx.engine, http=ctx.api_http)
