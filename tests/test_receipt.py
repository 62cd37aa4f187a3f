"""The receipt at /r/{token}: status in words, the photos, and a withdrawal that deletes files."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.models import AuditEntry, MediaAsset, Submission, SubmissionStatus
from aggregator.services.moderation import transition
from tests.factories import make_campaign
from tests.upload_support import app_client, media_files, open_page, photo_jpeg, submit


def send(client: TestClient, slug: str, *, photos: int = 2) -> str:
    """Upload through the form; returns the receipt token."""
    open_page(client, slug)
    files = [(f"{i}.jpg", photo_jpeg(i + 10), "image/jpeg") for i in range(photos)]
    response = submit(
        client,
        slug,
        files=files,
        data={"name": "Sara Levi", "city": "Haifa", "message": "For my grandfather.", "alt": "Me"},
    )
    assert response.status_code == 303
    return str(response.headers["location"][3:].split("?")[0])


def only_submission(session: Session) -> Submission:
    session.rollback()
    return session.exec(select(Submission)).one()


def test_the_receipt_shows_status_and_photos_privately(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        token = send(client, campaign.slug)
        page = client.get(f"/r/{token}?new=1")
        assert page.status_code == 200
        assert "Thank you" in page.text and "Waiting" in page.text
        assert page.text.count('<img src="/media/') == 2
        assert f"http://testserver/r/{token}" in page.text  # the link to keep
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "noindex" in page.headers["x-robots-tag"]
        russian = client.get(f"/r/{token}?lang=ru")
        assert "Ожидает просмотра" in russian.text and "Отозвать мои фотографии" in russian.text


@pytest.mark.parametrize(
    ("steps", "word"),
    [
        ([SubmissionStatus.approved], "Shown"),
        ([SubmissionStatus.rejected], "Not shown"),
        ([SubmissionStatus.approved, SubmissionStatus.removed], "Not shown"),
    ],
)
def test_status_in_words_follows_moderation(
    tmp_path: Path,
    database_url: str,
    session: Session,
    steps: list[SubmissionStatus],
    word: str,
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        token = send(client, campaign.slug, photos=1)
        submission = only_submission(session)
        for status in steps:
            transition(session=session, submission_id=submission.id, to=status, actor_label="t")  # type: ignore[arg-type]
        page = client.get(f"/r/{token}")
    assert f'<p class="status-word">{word}</p>' in page.text


@pytest.mark.parametrize("token", ["A" * 32, "short", "../../etc/passwd", "x" * 200])
def test_unknown_or_malformed_tokens_are_404(client: TestClient, token: str) -> None:
    assert client.get(f"/r/{token}").status_code == 404
    open_page_status = client.post(f"/r/{token}/withdraw", data={"csrf_token": "x"}).status_code
    assert open_page_status in (403, 404)


def withdraw_via_pages(client: TestClient, token: str) -> None:
    confirm = client.get(f"/r/{token}?withdraw=1")
    assert "Are you sure?" in confirm.text and f'action="/r/{token}/withdraw"' in confirm.text
    csrf = client.cookies.get("csrftoken")
    response = client.post(
        f"/r/{token}/withdraw", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == f"/r/{token}"


def assert_erased(session: Session, settings: Settings, keys: list[str]) -> None:
    submission = only_submission(session)
    assert submission.status == SubmissionStatus.withdrawn
    assert (submission.author_name, submission.city, submission.text) == ("", None, "")
    assets = session.exec(select(MediaAsset)).all()
    assert all(a.keys == {} and a.alt_text == "" for a in assets)
    root = settings.effective_media_dir
    assert all(not (root / key).exists() for key in keys)
    assert media_files(settings) == []
    audit = session.exec(select(AuditEntry).where(AuditEntry.to_status == "withdrawn")).one()
    assert audit.actor_label == "participant"
    everything = " ".join(f"{a.reason} {a.detail}" for a in session.exec(select(AuditEntry)).all())
    assert "Sara" not in everything and "Haifa" not in everything


def test_withdraw_removes_the_photos_everywhere_and_deletes_the_files(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        token = send(client, campaign.slug)
        session.rollback()
        keys = [k for a in session.exec(select(MediaAsset)).all() for k in a.keys.values()]
        assert len(keys) == 4 and all(client.get(f"/media/{k}").status_code == 200 for k in keys)
        withdraw_via_pages(client, token)
        assert all(client.get(f"/media/{k}").status_code == 404 for k in keys)
        page = client.get(f"/r/{token}")
        assert page.status_code == 200 and "Withdrawn" in page.text
        assert "/media/" not in page.text and "Withdraw my photos" not in page.text
        again = client.post(
            f"/r/{token}/withdraw",
            data={"csrf_token": client.cookies.get("csrftoken")},
            follow_redirects=False,
        )
        assert again.status_code == 303  # harmless to repeat
        assert_erased(session, settings, keys)


def test_an_approved_submission_can_be_withdrawn_too(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        token = send(client, campaign.slug, photos=1)
        submission = only_submission(session)
        transition(session=session, submission_id=submission.id, to=SubmissionStatus.approved)  # type: ignore[arg-type]
        keys = [k for a in session.exec(select(MediaAsset)).all() for k in a.keys.values()]
        withdraw_via_pages(client, token)
        assert_erased(session, settings, keys)


def test_withdraw_needs_the_csrf_token(tmp_path: Path, database_url: str, session: Session) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        token = send(client, campaign.slug, photos=1)
        response = client.post(f"/r/{token}/withdraw", data={}, follow_redirects=False)
        assert response.status_code == 403
        assert only_submission(session).status == SubmissionStatus.pending
        assert len(media_files(settings)) == 2
