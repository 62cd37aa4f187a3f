"""Collection end to end: a fake Mastodon over real HTTP → jobs → ingest → rows and files.

A crash in the middle of a run followed by a rerun converges: same rows, no duplicates, and no
file on disk that no row refers to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from starlette.responses import JSONResponse

from aggregator.config import Settings
from aggregator.jobs import collect_once, make_job_context, run_source
from aggregator.maintenance import sweep_media
from aggregator.media.storage import LocalStorage
from aggregator.models import AuditEntry, MediaAsset, Source, Submission
from tests.factories import DiskFullAfter, jpeg_bytes, make_campaign, make_source
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import serve_app

pytestmark = pytest.mark.anyio


def _fake_with_posts(count: int) -> FakeMastodon:
    fake = FakeMastodon()
    for n in range(count):
        status = fake.add_status(tags=["WeRemember"], text=f"We remember {n}")
        sid = status["id"]
        fake.media[f"media/{sid}-0.jpg"] = jpeg_bytes(800, 600, (40 + n * 9 % 200, 80, 120))
    return fake


@contextmanager
def _instance(
    fake: FakeMastodon, session: Session, app: Any = None
) -> Iterator[tuple[str, Source]]:
    """Serve the fake (or ``app`` in front of it), point its media URLs at the served
    address, and add a campaign with a source following #weremember there."""
    with serve_app(app or fake.app) as base_url:
        fake.base_url = base_url
        for status in fake.statuses.values():
            for attachment in status["media_attachments"]:
                attachment["url"] = attachment["url"].replace("http://mastodon.test", base_url)
        campaign = make_campaign(session)
        config = {"url": base_url, "hashtags": ["weremember"]}
        yield base_url, make_source(session, campaign, config=config)


def _rows(session: Session) -> tuple[int, int, set[str]]:
    submissions = session.exec(select(func.count()).select_from(Submission)).one()
    assets = session.exec(select(MediaAsset)).all()
    keys = {key for asset in assets for key in asset.keys.values()}
    return submissions, len(assets), keys


def _on_disk(storage: LocalStorage) -> set[str]:
    return set(storage.iter_keys())


async def test_collect_stores_posts_once_and_rerun_adds_nothing(
    settings: Settings, engine: Engine, session: Session
) -> None:
    fake = _fake_with_posts(5)
    with _instance(fake, session) as (_base_url, source):
        first = await collect_once(settings, engine)
        assert [r.ok for r in first] == [True], first[0].summary()
        assert first[0].new_items == 5
        second = await collect_once(settings, engine, source_id=source.id)
        assert second[0].new_items == 0

    session.rollback()  # end any read snapshot: see what the job committed
    session.expire_all()
    submissions, assets, keys = _rows(session)
    assert (submissions, assets) == (5, 5)
    storage = LocalStorage(settings.effective_media_dir)
    assert keys == _on_disk(storage)  # every file belongs to a row, every row has its files
    stored = session.get(Source, source.id)
    assert stored is not None and stored.cursor and stored.items_collected == 5
    assert stored.last_success_at is not None and stored.consecutive_failures == 0
    texts = sorted(s.text for s in session.exec(select(Submission)).all())
    assert texts[0].startswith("We remember 0")
    audits = session.exec(select(func.count()).select_from(AuditEntry)).one()
    assert audits == 5


async def test_crash_mid_run_then_rerun_converges(
    settings: Settings, engine: Engine, session: Session
) -> None:
    fake = _fake_with_posts(6)
    with _instance(fake, session) as (_base_url, source):
        ctx = make_job_context(settings, engine)
        # Each post writes two files (slide + thumb): the disk fills during the fourth post.
        ctx.storage = DiskFullAfter(settings.effective_media_dir, budget=7)
        crashed = await run_source(ctx, source.id, force=True)
        assert not crashed.ok and "No space left" in (crashed.error or "")
        session.rollback()  # end any read snapshot: see what the job committed
        session.expire_all()
        failed = session.get(Source, source.id)
        assert failed is not None and failed.consecutive_failures == 1
        assert failed.next_run_at is not None  # backing off
        # The page's transaction rolled back: no rows, no cursor, only orphan files.
        assert _rows(session)[:2] == (0, 0)
        assert failed.cursor is None

        ctx.storage = LocalStorage(settings.effective_media_dir)
        again = await run_source(ctx, source.id, force=True)
        assert again.ok and again.new_items == 6
        # The housekeeping job removes what the crashed run wrote and nothing else.
        swept = sweep_media(ctx, older_than_seconds=0)
        assert len(swept) == 7
        await ctx.api_http.aclose()
        await ctx.media_http.aclose()

    session.rollback()  # end any read snapshot: see what the job committed
    session.expire_all()
    submissions, assets, keys = _rows(session)
    assert (submissions, assets) == (6, 6)
    assert len({s.external_id for s in session.exec(select(Submission)).all()}) == 6
    storage = LocalStorage(settings.effective_media_dir)
    assert keys == _on_disk(storage)


def failing_older_pages(app: Any) -> Any:
    """``app``, except that every request for older statuses (max_id) gets a 503."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and b"max_id" in scope.get("query_string", b""):
            await JSONResponse({"error": "Service Unavailable"}, 503)(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapper


async def test_a_page_is_kept_when_fetching_the_next_one_fails(
    settings: Settings, engine: Engine, session: Session
) -> None:
    # The next page is fetched while this one is stored: its failure must not undo this one.
    fake = _fake_with_posts(60)
    served = {"app": failing_older_pages(fake.app)}

    async def switchable(scope: Any, receive: Any, send: Any) -> None:
        await served["app"](scope, receive, send)

    with _instance(fake, session, switchable) as (_base_url, source):
        ctx = make_job_context(settings, engine)
        failed = await run_source(ctx, source.id, force=True)
        assert not failed.ok and "503" in (failed.error or "") and failed.new_items == 40
        session.rollback()  # end any read snapshot: see what the job committed
        session.expire_all()
        assert _rows(session)[:2] == (40, 40)
        stored = session.get(Source, source.id)
        assert stored is not None and stored.cursor and "max_id" in stored.cursor

        served["app"] = fake.app  # the server recovers: the rerun reaches back the rest
        again = await run_source(ctx, source.id, force=True)
        assert again.ok and again.new_items == 20
        await ctx.api_http.aclose()
        await ctx.media_http.aclose()
    session.rollback()
    session.expire_all()
    assert _rows(session)[:2] == (60, 60)
    assert len({s.external_id for s in session.exec(select(Submission)).all()}) == 60


async def test_failing_source_backs_off_and_reports(
    settings: Settings, engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session)
    # Nothing listens on port 9 of loopback: a connection error.
    source = make_source(session, campaign, config={"url": "http://127.0.0.1:9", "hashtags": ["x"]})
    reports = await collect_once(settings, engine, source_id=source.id)
    assert not reports[0].ok
    assert reports[0].summary().startswith(f"source {source.id} (mastodon): failed")
    session.rollback()  # end any read snapshot: see what the job committed
    session.expire_all()
    stored = session.get(Source, source.id)
    assert stored is not None and stored.last_error and stored.consecutive_failures == 1


async def test_posts_deleted_upstream_leave_the_screen(
    settings: Settings, engine: Engine, session: Session
) -> None:
    from aggregator.maintenance import recheck_upstream
    from aggregator.models import SubmissionStatus
    from aggregator.services.moderation import transition

    fake = _fake_with_posts(3)
    with _instance(fake, session):
        ctx = make_job_context(settings, engine)
        assert (await collect_once(settings, engine))[0].new_items == 3
        session.rollback()
        for submission in session.exec(select(Submission)).all():
            transition(session=session, submission_id=submission.id, to=SubmissionStatus.approved)
        deleted_id = next(iter(fake.statuses))
        fake.deleted.add(deleted_id)
        assert await recheck_upstream(ctx) == 1
        assert await recheck_upstream(ctx) == 0  # already withdrawn: not approved any more
        await ctx.api_http.aclose()
        await ctx.media_http.aclose()
    session.rollback()
    session.expire_all()
    statuses = {s.remote_id: s.status for s in session.exec(select(Submission)).all()}
    assert statuses[deleted_id] == SubmissionStatus.withdrawn
    assert sorted(statuses.values()).count(SubmissionStatus.approved) == 2
    gone = session.exec(select(Submission).where(Submission.remote_id == deleted_id)).one()
    assert all(
        not a.keys
        for a in session.exec(select(MediaAsset).where(MediaAsset.submission_id == gone.id)).all()
    )
