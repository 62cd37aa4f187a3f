"""The path upload.js takes: one request per photo (staged), then the form with the tokens;
staged photos are bound to the browser and swept when never sent."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.db import make_engine
from aggregator.errors import TooManyRequests
from aggregator.media.storage import LocalStorage
from aggregator.models import MediaAsset, StagedPhoto, utcnow
from aggregator.services.ingest import IncomingImage
from aggregator.services.uploads import (
    ParticipantFields,
    count_upload,
    load_staged,
    make_processor,
    owner_of,
    process_and_store,
    sweep_staged,
)
from aggregator.services.uploads_staging import counter_session, write_lock
from tests.factories import make_campaign
from tests.media_samples import heic, photo
from tests.upload_support import (
    app_client,
    counts,
    media_files,
    open_page,
    photo_jpeg,
    stage,
    submit,
)


def test_staged_photos_become_one_submission_with_their_alt_text(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        open_page(client, campaign.slug)
        first = stage(client, campaign.slug, ("a.jpg", photo_jpeg(1), "image/jpeg"))
        second = stage(client, campaign.slug, ("b.heic", heic(photo(seed=2)), "image/heic"))
        assert first.status_code == second.status_code == 201
        assert first.headers["cache-control"] == "no-store"
        ids = [first.json()["id"], second.json()["id"]]
        assert client.get(second.json()["thumb"]).status_code == 200  # HEIC preview for the page
        assert counts(session) == (0, 0, 2)
        response = submit(
            client,
            campaign.slug,
            data={"staged": ids, f"alt:{ids[1]}": "Grandmother with the sign"},
        )
        assert response.status_code == 303
        assert counts(session) == (1, 2, 0)
        assets = session.exec(select(MediaAsset).order_by(MediaAsset.position)).all()  # type: ignore[arg-type]
        assert [a.alt_text for a in assets] == ["", "Grandmother with the sign"]
        # The staged files became the submission's own: nothing copied, nothing left over.
        assert len(media_files(settings)) == 4
        assert {
            str(p.relative_to(settings.effective_media_dir)) for p in media_files(settings)
        } == {key for a in assets for key in a.keys.values()}


def test_a_staged_photo_cannot_be_claimed_from_another_browser(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (owner, _settings):
        open_page(owner, campaign.slug)
        token = stage(owner, campaign.slug, ("a.jpg", photo_jpeg(), "image/jpeg")).json()["id"]
    with app_client(tmp_path, database_url) as (stranger, _settings):
        open_page(stranger, campaign.slug)
        response = submit(stranger, campaign.slug, data={"staged": token})
    assert response.status_code == 422
    assert "waited too long" in response.text
    assert counts(session) == (0, 0, 1)


def test_the_same_staged_photos_sent_twice_at_once_make_one_submission(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    """Two sendings of one form that both found the staged photos (a double tap): the first
    takes them; the second is refused with a 409 and leaves the first one's files alone."""
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        csrf = open_page(client, campaign.slug)
        token = stage(client, campaign.slug, ("a.jpg", photo_jpeg(), "image/jpeg")).json()["id"]
        storage = client.app.state.storage  # type: ignore[attr-defined]
        owner = owner_of(csrf)
        # Both sendings read the staged row before either has stored anything.
        found = [
            load_staged(
                session=session, storage=storage, campaign=campaign, owner=owner, tokens=[token]
            )[0]
            for _ in range(2)
        ]
        finished = [
            process_and_store(
                session=session,
                storage=storage,
                settings=settings,
                campaign=campaign,
                fields=ParticipantFields(consent=("projection",)),
                problems=[],
                files=[],
                alts=[],
                processor=make_processor(settings),
                gate=threading.BoundedSemaphore(1),
                staged=[(row, IncomingImage(image, "")) for row, image in staged],
            )
            for staged in found
        ]
        assert finished[0].ingested is not None
        assert finished[1].ingested is None and finished[1].staged == []
        assert [(p.code, p.status) for p in finished[1].problems] == [("staged_sent", 409)]
        assert "уже отправлены" in finished[1].problems[0].text("ru")
        assert counts(session) == (1, 1, 0)
        asset = session.exec(select(MediaAsset)).one()
        on_disk = {str(p.relative_to(settings.effective_media_dir)) for p in media_files(settings)}
        assert on_disk == set(asset.keys.values())


def test_staging_errors_are_json_in_the_visitors_language(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url, upload_max_bytes=100_000) as (client, settings):
        open_page(client, campaign.slug, lang="ru")
        wrong = stage(client, campaign.slug, ("x.jpg", b"%PDF-1.4 not a photo", "image/jpeg"))
        assert wrong.status_code == 415
        assert wrong.json()["error"]["code"] == "unsupported_format"
        assert "не фотография" in wrong.json()["error"]["message"]
        big = stage(
            client, campaign.slug, ("big.jpg", b"\xff\xd8\xff" + b"\0" * 100_000, "image/jpeg")
        )
        assert big.status_code == 413
        assert "0.0954 МБ" in big.json()["error"]["message"]
        no_csrf = client.post(
            f"/c/{campaign.slug}/photos", files=[("photo", ("a.jpg", photo_jpeg(), "image/jpeg"))]
        )
        assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf"
        missing = stage(client, "no-such-campaign", ("a.jpg", photo_jpeg(), "image/jpeg"))
        assert missing.status_code == 404
        assert counts(session) == (0, 0, 0) and media_files(settings) == []


def test_staging_is_rate_limited_and_respects_the_window(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    closed = make_campaign(session, upload_closes_at=utcnow() - timedelta(minutes=1))
    overrides = {"upload_rate_limit": 1, "upload_max_files": 2}  # two staged photos per window
    with app_client(tmp_path, database_url, **overrides) as (client, _settings):
        open_page(client, campaign.slug)
        statuses = [
            stage(client, campaign.slug, (f"{i}.jpg", photo_jpeg(i), "image/jpeg"))
            for i in range(3)
        ]
        shut = stage(client, closed.slug, ("a.jpg", photo_jpeg(), "image/jpeg"))
    assert [r.status_code for r in statuses] == [201, 201, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert statuses[2].json()["error"]["code"] == "rate_limited"
    assert shut.status_code == 403 and shut.json()["error"]["code"] == "uploads_closed"


def test_staged_photos_never_sent_are_swept_with_their_files(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        open_page(client, campaign.slug)
        token = stage(client, campaign.slug, ("a.jpg", photo_jpeg(1), "image/jpeg")).json()["id"]
        storage = LocalStorage(settings.effective_media_dir)
        session.rollback()
        assert sweep_staged(session=session, storage=storage) == 0  # not expired yet
        assert len(media_files(settings)) == 2
        later = utcnow() + timedelta(hours=1, seconds=1)
        assert sweep_staged(session=session, storage=storage, now=later) == 1
        assert media_files(settings) == []
        assert session.exec(select(StagedPhoto)).all() == []
        response = submit(client, campaign.slug, data={"staged": token})
        assert response.status_code == 422 and "waited too long" in response.text
    assert counts(session) == (0, 0, 0)


def test_staging_sweeps_expired_photos_on_the_way(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        open_page(client, campaign.slug)
        stage(client, campaign.slug, ("a.jpg", photo_jpeg(1), "image/jpeg"))
        session.rollback()
        row = session.exec(select(StagedPhoto)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        session.commit()
        stage(client, campaign.slug, ("b.jpg", photo_jpeg(2), "image/jpeg"))
        assert counts(session) == (0, 0, 1)
        assert len(media_files(settings)) == 2


def test_rate_counters_skip_fsync_on_a_kept_connection_and_the_pool_stays_durable(
    settings: Settings,
) -> None:
    engine = make_engine(settings.effective_database_url, pool_size=2, max_overflow=0)
    sqlite = engine.dialect.name == "sqlite"
    limited = settings.model_copy(update={"upload_rate_limit": 2})
    try:
        with Session(engine) as session:
            count_upload(session, limited, "192.0.2.1")
            count_upload(session, limited, "192.0.2.1")
            with pytest.raises(TooManyRequests):
                count_upload(session, limited, "192.0.2.1")
            used = []
            for _ in range(2):
                with write_lock(session), counter_session(session) as counters:
                    used.append(counters.connection().connection.dbapi_connection)
                    if sqlite:  # relaxed: NORMAL
                        pragma = counters.connection().exec_driver_sql("PRAGMA synchronous")
                        assert pragma.scalar() == 1
        pool = engine.pool
        if sqlite:  # one connection kept for counting, the same every time (also after a 429)
            assert used[0] is used[1] and pool.checkedout() == 1  # type: ignore[attr-defined]
        with engine.connect() as connection:
            counted = connection.exec_driver_sql("SELECT count FROM ratecounter").scalar()
            if sqlite:  # every pooled connection keeps full durability
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert counted == 3
    finally:
        engine.dispose()
    if sqlite:  # disposing the engine closed the kept connection
        with pytest.raises(sqlite3.ProgrammingError):
            used[0].execute("SELECT 1")
