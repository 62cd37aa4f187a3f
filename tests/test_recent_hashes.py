"""New images are compared with the campaign's recent ones, kept per process: what another
process adds is seen, what is deleted is never pointed at, a late commit is not missed."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, insert
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.db import make_engine
from aggregator.media import process_image
from aggregator.media.storage import LocalStorage
from aggregator.models import Campaign, MediaAsset, Origin, Submission
from aggregator.services import recent_hashes
from aggregator.services.ingest import Incoming, IncomingImage, Ingested, ingest
from tests.factories import jpeg_bytes, make_campaign

RED = (200, 30, 30)
BLUE = (30, 30, 200)
GREEN = (30, 200, 30)


def upload(engine: Engine, settings: Settings, campaign: Campaign, colour: tuple) -> Ingested:
    """One photo of ``colour`` stored through ingest on its own session of ``engine``."""
    incoming = Incoming(
        origin=Origin.upload,
        author_name="Aigerim",
        images=[IncomingImage(process_image(jpeg_bytes(900, 700, colour)), "")],
    )
    with Session(engine, expire_on_commit=False) as session:
        return ingest(
            session=session,
            storage=LocalStorage(settings.effective_media_dir),
            campaign=campaign,
            incoming=incoming,
        )


def asset_of(session: Session, stored: Ingested) -> MediaAsset:
    session.rollback()  # a fresh snapshot: the uploads commit on their own sessions
    query = select(MediaAsset).where(MediaAsset.submission_id == stored.submission.id)
    return session.exec(query).one()


def test_an_image_deleted_since_it_was_kept_is_never_pointed_at(
    engine: Engine, settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent_hashes, "RESCAN", 0)  # only what is newer is read again
    campaign = make_campaign(session)
    red = upload(engine, settings, campaign, RED)
    red_id = asset_of(session, red).id
    upload(engine, settings, campaign, BLUE)  # the process now keeps the red photo's hashes
    with engine.begin() as connection:  # withdrawn, by another process
        connection.execute(delete(MediaAsset).where(col(MediaAsset.id) == red_id))
        connection.execute(delete(Submission).where(col(Submission.id) == red.submission.id))
    again = upload(engine, settings, campaign, RED)  # would break the foreign key if pointed
    assert asset_of(session, again).duplicate_of_id is None
    assert "near_duplicate" not in again.submission.flags
    with Session(engine) as reader:  # and it is forgotten
        assert red_id not in recent_hashes.recent_hashes(reader, campaign)


def test_images_another_process_stores_are_compared_too(
    engine: Engine, settings: Settings, session: Session
) -> None:
    campaign = make_campaign(session)
    upload(engine, settings, campaign, BLUE)  # this process keeps the campaign's hashes
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        red = upload(other, settings, campaign, RED)  # another process (its own engine)
    finally:
        other.dispose()
    copy = upload(engine, settings, campaign, RED)
    assert asset_of(session, copy).duplicate_of_id == asset_of(session, red).id
    assert "near_duplicate" in copy.submission.flags


def test_an_image_committed_late_with_an_earlier_id_is_not_missed(
    engine: Engine, settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a transaction may commit after another that took later ids: the next
    rescan (at most ``RESCAN_SECONDS`` later) reads it."""
    clock = [1000.0]
    monkeypatch.setattr(recent_hashes, "monotonic", lambda: clock[0])
    campaign = make_campaign(session)
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:  # another process stores two photos; the first one's row is held back
        late = asset_of(session, upload(other, settings, campaign, RED))
        upload(other, settings, campaign, GREEN)
    finally:
        other.dispose()
    columns = MediaAsset.__table__.columns  # type: ignore[attr-defined]
    row = {column.name: getattr(late, column.name) for column in columns}
    with engine.begin() as connection:
        connection.execute(delete(MediaAsset).where(col(MediaAsset.id) == late.id))
    upload(engine, settings, campaign, BLUE)  # this process reads past the red photo's id
    with engine.begin() as connection:  # which only now commits
        connection.execute(insert(MediaAsset).values(row))
    clock[0] += recent_hashes.RESCAN_SECONDS
    copy = upload(engine, settings, campaign, RED)
    assert asset_of(session, copy).duplicate_of_id == late.id


def test_only_the_most_recent_images_are_compared(
    engine: Engine, settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent_hashes, "WINDOW", 2)
    campaign = make_campaign(session)
    upload(engine, settings, campaign, RED)
    upload(engine, settings, campaign, BLUE)
    upload(engine, settings, campaign, GREEN)  # the red photo leaves the window
    copy = upload(engine, settings, campaign, RED)
    assert asset_of(session, copy).duplicate_of_id is None
