"""The campaign page and its form without JavaScript: every limit and error, consent,
languages, and the rule that nothing is stored from a refused submission."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from aggregator.media import ImageRejected
from aggregator.models import AuditEntry, MediaAsset, Origin, Submission, SubmissionStatus, utcnow
from aggregator.services import uploads as up
from aggregator.services.uploads_stream import ReceivedFile
from aggregator.services.users import hash_token
from tests.factories import make_campaign
from tests.media_samples import heic, photo, png, truncated
from tests.upload_support import app_client, counts, media_files, open_page, photo_jpeg, submit

SMALL = {"upload_max_bytes": 300_000}


def test_campaign_page_shows_text_sign_and_form_in_the_visitors_language(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(
        session,
        name="Remembrance Day",
        translations={"ru": {"name": "День памяти", "description": "Мы собираем фотографии."}},
    )
    with app_client(tmp_path, database_url) as (client, _settings):
        english = client.get(f"/c/{campaign.slug}")
        russian = client.get(f"/c/{campaign.slug}", headers={"Accept-Language": "ru,en;q=0.5"})
        kazakh = client.get(f"/c/{campaign.slug}?lang=kk")
        hebrew = client.get(f"/c/{campaign.slug}?lang=he")
    assert english.status_code == 200
    assert "Remembrance Day" in english.text and 'name="photos"' in english.text
    assert 'accept="image/*' in english.text and "multiple" in english.text
    assert 'enctype="multipart/form-data"' in english.text
    assert "My photo may be shown at commemorative events." in english.text
    assert "День памяти" in russian.text and "Мы помним" in russian.text
    assert "Отправить мои фотографии" in russian.text
    assert "Біз еске аламыз" in kazakh.text
    assert 'dir="rtl"' in hebrew.text and 'lang="he"' in hebrew.text


def test_unknown_campaign_is_404(client: object) -> None:
    response = client.get("/c/no-such-campaign")  # type: ignore[attr-defined]
    assert response.status_code == 404


def test_a_plain_form_submission_enters_the_queue_with_a_receipt(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        open_page(client, campaign.slug)
        response = submit(
            client,
            campaign.slug,
            files=[
                ("one.jpg", photo_jpeg(1), "image/jpeg"),
                ("two.jpg", photo_jpeg(2), "image/jpeg"),
            ],
            data={
                "name": "Анна \u202eИванова",
                "city": "Алматы",
                "message": "Помним деда.",
                "language": "ru",
                "alt": "A woman holding a sign",
            },
            consent=("projection", "archive"),
        )
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith("/r/") and location.endswith("?new=1")
        token = location[3:].split("?")[0]
        assert len(token) >= 22  # at least 128 random bits
        session.rollback()
        submission = session.exec(select(Submission)).one()
        assert submission.status == SubmissionStatus.pending
        assert submission.origin == Origin.upload
        assert submission.author_name == "Анна Иванова"  # the bidi override is gone
        assert (submission.city, submission.text, submission.language) == (
            "Алматы",
            "Помним деда.",
            "ru",
        )
        assert submission.consent == ["projection", "archive"]
        assert submission.receipt_token_hash == hash_token(token)
        assets = session.exec(select(MediaAsset).order_by(MediaAsset.position)).all()  # type: ignore[arg-type]
        assert [a.alt_text for a in assets] == ["A woman holding a sign"] * 2
        for asset in assets:
            assert client.get(f"/media/{asset.keys['thumb']}").status_code == 200
        assert len(media_files(settings)) == 4
        audit = session.exec(select(AuditEntry)).all()
        assert [a.action for a in audit] == ["ingest"]


def test_an_empty_name_stays_anonymous_and_heic_is_accepted(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        open_page(client, campaign.slug)
        response = submit(
            client, campaign.slug, files=[("IMG_0001.HEIC", heic(photo(seed=3)), "image/heic")]
        )
    assert response.status_code == 303
    session.rollback()
    submission = session.exec(select(Submission)).one()
    assert submission.author_name == ""
    asset = session.exec(select(MediaAsset)).one()
    assert asset.source_format == "heif" and asset.keys["slide"].endswith(".jpg")


def test_consent_is_required_and_good_photos_are_kept_for_the_second_try(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        open_page(client, campaign.slug, lang="ru")
        refused = submit(
            client,
            campaign.slug,
            files=[("me.jpg", photo_jpeg(4), "image/jpeg")],
            data={"name": "Мария"},
            consent=("web",),
        )
        assert refused.status_code == 422
        assert "Пожалуйста, отметьте первый пункт" in refused.text
        assert 'value="Мария"' in refused.text  # what was typed is kept
        assert counts(session)[:2] == (0, 0)  # no submission
        token = refused.text.split('name="staged" value="')[1].split('"')[0]
        again = submit(client, campaign.slug, data={"staged": token, "name": "Мария"})
        assert again.status_code == 303
    assert counts(session) == (1, 1, 0)


@pytest.mark.parametrize(
    ("name", "data", "status", "english"),
    [
        ("note.jpg", b"<!doctype html><html><script>alert(1)</script></html>", 415, "not a kind"),
        ("cut.jpg", truncated(photo_jpeg(5)), 422, "could not be read"),
        ("empty.jpg", b"", 303, ""),  # an empty file input: no photo, handled as none chosen
        ("bomb.png", png(100_000, 100_000), 413, "too many pixels"),
    ],
)
def test_refused_files_are_named_with_their_reason_and_nothing_is_stored(
    tmp_path: Path,
    database_url: str,
    session: Session,
    name: str,
    data: bytes,
    status: int,
    english: str,
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        open_page(client, campaign.slug)
        response = submit(
            client,
            campaign.slug,
            files=[("good.jpg", photo_jpeg(6), "image/jpeg"), (name, data, "image/jpeg")],
        )
        if status == 303:  # the empty part is ignored, the good photo goes through
            assert response.status_code == 303
            return
        assert response.status_code == status
        assert name in response.text and english in response.text
        assert counts(session) == (0, 0, 0)
        assert media_files(settings) == []


def test_an_oversized_file_is_413_and_reading_stops(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url, **SMALL) as (client, settings):
        open_page(client, campaign.slug, lang="ru")
        big = photo_jpeg(7, 1200, 900) + b"\0" * 300_001
        response = submit(client, campaign.slug, files=[("huge.jpg", big, "image/jpeg")])
        assert response.status_code == 413
        assert "huge.jpg" in response.text
        assert "МБ" in response.text
        assert counts(session) == (0, 0, 0) and media_files(settings) == []


def test_more_files_than_allowed_is_refused(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url, upload_max_files=2) as (client, _settings):
        open_page(client, campaign.slug)
        specs = [(f"{i}.jpg", photo_jpeg(i), "image/jpeg") for i in range(3)]
        response = submit(client, campaign.slug, files=specs)
    assert response.status_code == 422
    assert "at most 2 photos" in response.text
    assert counts(session) == (0, 0, 0)


def test_no_photo_and_overlong_fields_are_explained(client: object, session: Session) -> None:
    campaign = make_campaign(session)
    open_page(client, campaign.slug)  # type: ignore[arg-type]
    response = submit(client, campaign.slug, data={"message": "x" * 1001})  # type: ignore[arg-type]
    assert response.status_code == 422
    assert "Please add at least one photo." in response.text
    assert "Please shorten this to 1000 characters." in response.text


@pytest.mark.parametrize(
    "headers",
    [
        None,  # no token at all
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
    ],
)
def test_csrf_missing_or_cross_site_is_403_and_stores_nothing(
    tmp_path: Path, database_url: str, session: Session, headers: dict[str, str] | None
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        open_page(client, campaign.slug)
        files = [("a.jpg", photo_jpeg(8), "image/jpeg")]
        response = submit(
            client, campaign.slug, files=files, csrf=headers is not None, headers=headers
        )
        assert response.status_code == 403
        assert "expired" in response.text
        assert counts(session) == (0, 0, 0) and media_files(settings) == []


def test_same_origin_headers_are_accepted(client: object, session: Session) -> None:
    campaign = make_campaign(session)
    open_page(client, campaign.slug)  # type: ignore[arg-type]
    response = submit(
        client,  # type: ignore[arg-type]
        campaign.slug,
        files=[("a.jpg", photo_jpeg(9), "image/jpeg")],
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
    )
    assert response.status_code == 303


def test_rate_limit_is_429_with_retry_after(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url, upload_rate_limit=2) as (client, _settings):
        open_page(client, campaign.slug)
        statuses = [
            submit(client, campaign.slug, files=[("a.jpg", photo_jpeg(i), "image/jpeg")])
            for i in range(3)
        ]
    assert [r.status_code for r in statuses] == [303, 303, 429]
    # Sliding window: the wait may reach into the next 30-minute window.
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 2 * 1800
    assert "Please wait" in statuses[2].text
    assert counts(session)[0] == 2


def test_ipv6_addresses_of_one_64_share_a_bucket_and_untrusted_forwarding_is_ignored(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    overrides = {"upload_rate_limit": 1, "trust_proxy_headers": True}
    with app_client(tmp_path, database_url, **overrides) as (client, _settings):
        open_page(client, campaign.slug)
        first = submit(
            client,
            campaign.slug,
            files=[("a.jpg", photo_jpeg(1), "image/jpeg")],
            headers={"X-Forwarded-For": "2001:db8:1:2::10"},
        )
        same_64 = submit(
            client,
            campaign.slug,
            files=[("b.jpg", photo_jpeg(2), "image/jpeg")],
            headers={"X-Forwarded-For": "2001:db8:1:2:ffff::99"},
        )
        other_64 = submit(
            client,
            campaign.slug,
            files=[("c.jpg", photo_jpeg(3), "image/jpeg")],
            headers={"X-Forwarded-For": "2001:db8:1:3::10"},
        )
    assert [first.status_code, same_64.status_code, other_64.status_code] == [303, 429, 303]
    with app_client(tmp_path, database_url, upload_rate_limit=1) as (client, _settings):
        open_page(client, campaign.slug)
        forged = [
            submit(
                client,
                campaign.slug,
                files=[("d.jpg", photo_jpeg(i), "image/jpeg")],
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
            for i in range(2)
        ]
    assert [r.status_code for r in forged] == [303, 429]


def test_a_closed_campaign_says_so_and_refuses_uploads(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    closed = make_campaign(session, upload_closes_at=utcnow() - timedelta(days=1))
    later = make_campaign(session, upload_opens_at=utcnow() + timedelta(days=3))
    with app_client(tmp_path, database_url) as (client, _settings):
        page = client.get(f"/c/{closed.slug}?lang=ru")
        assert page.status_code == 200 and 'name="photos"' not in page.text
        assert "Приём фотографий закрыт" in page.text
        assert "have not opened yet" in client.get(f"/c/{later.slug}?lang=en").text
        open_page(client, closed.slug)
        for campaign in (closed, later):
            response = submit(client, campaign.slug, files=[("a.jpg", photo_jpeg(), "image/jpeg")])
            assert response.status_code == 403
    assert counts(session) == (0, 0, 0)


def test_the_honeypot_refuses_robots(client: object, session: Session) -> None:
    campaign = make_campaign(session)
    open_page(client, campaign.slug)  # type: ignore[arg-type]
    response = submit(
        client,  # type: ignore[arg-type]
        campaign.slug,
        files=[("a.jpg", photo_jpeg(), "image/jpeg")],
        data={"website": "http://spam.example"},
    )
    assert response.status_code == 422
    assert "filled in automatically" in response.text
    assert counts(session) == (0, 0, 0)


def test_a_rejected_file_reason_is_in_russian(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        open_page(client, campaign.slug, lang="ru")
        response = submit(client, campaign.slug, files=[("x.jpg", b"GIF8 nonsense", "image/jpeg")])
    assert response.status_code == 415
    assert "Фотографии ещё не отправлены" in response.text
    assert "Этот файл — не фотография, которую мы можем принять" in response.text


def test_non_multipart_and_cut_off_bodies_are_refused(client: object, session: Session) -> None:
    campaign = make_campaign(session)
    token = open_page(client, campaign.slug)  # type: ignore[arg-type]
    plain = client.post(  # type: ignore[attr-defined]
        f"/c/{campaign.slug}/submit", data={"csrf_token": token}, follow_redirects=False
    )
    assert plain.status_code == 415
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo_jpeg()[:500]
    cut = client.post(  # type: ignore[attr-defined]
        f"/c/{campaign.slug}/submit",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert cut.status_code == 400
    assert counts(session) == (0, 0, 0)


def test_processing_holds_the_gate_of_concurrent_decoders() -> None:
    """Uploads in their last step (the upload worker's UPLOAD_THREADS threads) share
    PROCESSING_CONCURRENCY decoders: ``process_files`` decodes only while holding the gate."""
    gate = threading.BoundedSemaphore(up.PROCESSING_CONCURRENCY)
    busy = peak = 0
    guard = threading.Lock()

    def processor(_file: ReceivedFile) -> object:
        nonlocal busy, peak
        with guard:
            busy += 1
            peak = max(peak, busy)
        time.sleep(0.02)
        with guard:
            busy -= 1
        raise ImageRejected("corrupt")

    def upload() -> None:
        file = ReceivedFile("photos", "a.jpg", "image/jpeg")
        try:
            [problem] = up.process_files([file], processor, gate)  # type: ignore[arg-type]
        finally:
            file.close()
        assert isinstance(problem, up.Problem) and problem.filename == "a.jpg"

    threads = [threading.Thread(target=upload) for _ in range(up.UPLOAD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == up.PROCESSING_CONCURRENCY


def test_closing_a_campaign_refuses_the_very_next_upload(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        open_page(client, campaign.slug)
        first = submit(client, campaign.slug, files=[("a.jpg", photo_jpeg(1), "image/jpeg")])
        assert first.status_code == 303  # the upload path now keeps a copy of the campaign
        campaign.upload_closes_at = utcnow() - timedelta(minutes=1)
        session.add(campaign)
        session.commit()  # saved in this process: every kept copy is let go at once
        second = submit(client, campaign.slug, files=[("b.jpg", photo_jpeg(2), "image/jpeg")])
        assert second.status_code == 403
    assert counts(session) == (1, 1, 0)


def test_every_upload_stops_counting_as_in_progress_when_it_is_answered(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    """A group of submissions waits for uploads in progress (uploads_commit): one left counted
    after its answer, stored or refused, would make every later group wait."""
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url, upload_rate_limit=3) as (client, _settings):
        worker = client.app.state.upload_worker  # type: ignore[attr-defined]
        open_page(client, campaign.slug)
        statuses = []
        for spec in [
            ("a.jpg", photo_jpeg(1), "image/jpeg"),
            ("b.txt", b"not a photo", "text/plain"),
        ]:
            statuses.append(submit(client, campaign.slug, files=[spec]).status_code)
            assert worker.uploads_in_progress == 0
        statuses.append(submit(client, campaign.slug, files=[], csrf=False).status_code)
        assert worker.uploads_in_progress == 0
        statuses.append(
            client.post(
                f"/api/v1/campaigns/{campaign.slug}/submissions",
                files=[("photos", ("c.jpg", photo_jpeg(2), "image/jpeg"))],
                data={"consent": "projection"},
            ).status_code
        )
        assert worker.uploads_in_progress == 0
    assert statuses[0] == 303 and statuses[1] == 415 and statuses[2] == 403
    assert statuses[3] == 429  # the API counts against the same limit of three
