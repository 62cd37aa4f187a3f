"""The queue page, the JSON API and the form fallbacks over HTTP; security rows M4–M6,
takedown (media URL 404) and rotation with real images."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.media import process_image
from aggregator.models import (
    AuditEntry,
    Campaign,
    MediaAsset,
    Origin,
    Role,
    Submission,
    SubmissionStatus,
)
from aggregator.services.ingest import Incoming, IncomingImage, ingest
from tests.factories import jpeg_bytes, make_campaign, make_event, make_submission, make_user
from tests.moderation_support import api, csrf, fresh_session, login

S = SubmissionStatus


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


@pytest.fixture
def moderator(client: TestClient, session: Session) -> Any:
    """A logged-in moderator."""
    user = make_user(session, role=Role.moderator, display_name="Мария")
    assert login(client, user.email).status_code == 303
    return user


def photo_submission(app: Any, session: Session, campaign: Campaign, **kw: Any) -> Submission:
    """A submission with a real processed image stored in the app's media folder."""
    image = process_image(jpeg_bytes(400, 200, (200, 30, 30)))
    incoming = Incoming(
        origin=Origin.upload,
        images=[IncomingImage(image, alt_text="A person holding a sign")],
        author_name="Айгүл",
        text="Біз еске аламыз",
        consent=["projection", "web"],
        **kw,
    )
    result = ingest(
        session=session, storage=app.state.storage, campaign=campaign, incoming=incoming
    )
    return result.submission


def test_queue_page_shows_cards_and_claims(
    client: TestClient, session: Session, moderator: Any, app: Any
) -> None:
    campaign = make_campaign(session)
    item = photo_submission(app, session, campaign)
    other = make_submission(session, campaign, flags=["rule:отрицание"], sensitive=True)
    page = client.get("/moderate")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    html = page.text
    assert f'id="card-{item.id}"' in html and f'id="card-{other.id}"' in html
    assert "Біз еске аламыз" in html and "отрицание" in html
    assert "/media/" in html and 'name="csrf-token"' in html
    assert "js/moderation.js" in html and "<script>" not in html  # CSP: no inline script
    session.expire_all()
    assert session.get(Submission, item.id).claimed_by_id == moderator.id  # type: ignore[union-attr]
    assert client.get("/moderate?status=approved&campaign=abc").status_code == 422
    assert client.get(f"/moderate/{item.id}").status_code == 200
    assert client.get("/moderate/999999").status_code == 404


def test_api_decisions_and_audit(client: TestClient, session: Session, moderator: Any) -> None:
    campaign = make_campaign(session)
    a, b = make_submission(session, campaign), make_submission(session, campaign)
    response = api(client, f"/submissions/{a.id}/approve")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    response = api(client, f"/submissions/{b.id}/reject", {"reason": "Не по теме"})
    assert response.json()["status"] == "rejected"
    assert api(client, f"/submissions/{b.id}/undo").json()["status"] == "pending"
    # The loser of a decision gets 409 with the error shape.
    response = api(client, f"/submissions/{a.id}/reject")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert api(client, f"/submissions/{a.id}/undo").status_code == 409
    entries = session.exec(
        select(AuditEntry).where(AuditEntry.submission_id == b.id).order_by(col(AuditEntry.id))
    ).all()
    assert [(e.to_status, e.reason, e.actor_id) for e in entries if e.action == "transition"] == [
        ("rejected", "Не по теме", moderator.id),
        ("pending", "undo", moderator.id),
    ]
    assert api(client, "/submissions/999999/approve").status_code == 404
    assert api(client, f"/submissions/{b.id}/reject", {"reason": "x" * 1001}).status_code == 422


def test_m4_csrf_on_approve(client: TestClient, session: Session, moderator: Any) -> None:
    item = make_submission(session, make_campaign(session))
    # GET on an action URL is not an action.
    assert client.get(f"/api/v1/submissions/{item.id}/approve").status_code == 405
    assert client.get(f"/moderate/{item.id}/approve").status_code == 405
    # A cross-site POST carries the cookies but cannot know the token.
    response = client.post(f"/api/v1/submissions/{item.id}/approve", json={})
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf"
    response = client.post(
        f"/api/v1/submissions/{item.id}/approve", json={}, headers={"X-CSRF-Token": "forged"}
    )
    assert response.status_code == 403
    response = client.post(f"/moderate/{item.id}/approve", data={"csrf_token": "forged"})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Submission, item.id).status == S.pending  # type: ignore[union-attr]
    assert api(client, f"/submissions/{item.id}/approve").status_code == 200


def test_m5_hosts_and_display_tokens_cannot_moderate(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    item = make_submission(session, campaign)
    _event, link = make_event(session, campaign)
    # A display (share-link) token in any shape opens nothing here.
    for headers in ({"Authorization": f"Bearer {link.token}"}, {"Cookie": f"session={link.token}"}):
        assert client.get("/moderate", headers=headers, follow_redirects=False).status_code == 303
        response = client.post(
            f"/api/v1/submissions/{item.id}/approve",
            headers={**headers, "X-CSRF-Token": csrf(client)},
        )
        assert response.status_code in (401, 403)
    assert client.get(f"/api/v1/moderation/queue?token={link.token}").status_code == 401
    host = make_user(session, role=Role.host)
    login(client, host.email)
    assert client.get("/moderate").status_code == 403
    assert api(client, f"/submissions/{item.id}/approve").status_code == 403
    assert client.get("/api/v1/moderation/queue").status_code == 403
    session.expire_all()
    assert session.get(Submission, item.id).status == S.pending  # type: ignore[union-attr]


def test_takedown_removes_media(
    client: TestClient, session: Session, moderator: Any, app: Any
) -> None:
    campaign = make_campaign(session)
    item = photo_submission(app, session, campaign)
    asset = session.exec(select(MediaAsset).where(MediaAsset.submission_id == item.id)).one()
    urls = [f"/media/{key}" for key in asset.keys.values()]
    assert api(client, f"/submissions/{item.id}/approve").status_code == 200
    assert all(client.get(url).status_code == 200 for url in urls)
    # Only approved items can be taken down.
    pending = make_submission(session, campaign)
    assert api(client, f"/submissions/{pending.id}/remove").status_code == 409
    response = api(client, f"/submissions/{item.id}/remove", {"reason": "Просьба автора"})
    assert response.status_code == 200 and response.json()["status"] == "removed"
    for url in urls:
        assert client.get(url).status_code in (404, 410)
    session.expire_all()
    assert session.get(MediaAsset, asset.id).keys == {}  # type: ignore[union-attr]
    for key in asset.keys.values():
        assert not app.state.storage.exists(key)
    # A taken-down item cannot come back.
    assert api(client, f"/submissions/{item.id}/approve").status_code == 409


def test_bulk_api(client: TestClient, session: Session, moderator: Any) -> None:
    campaign = make_campaign(session)
    items = [make_submission(session, campaign) for _ in range(4)]
    gone = make_submission(session, campaign, status=S.approved)
    response = api(
        client,
        "/submissions/bulk",
        {"ids": [i.id for i in items] + [gone.id], "action": "reject", "reason": "спам"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["done"] == [i.id for i in items]
    assert body["conflicts"] == {str(gone.id): "approved"}
    assert api(client, "/submissions/bulk", {"ids": [], "action": "approve"}).status_code == 422
    assert api(client, "/submissions/bulk", {"ids": [1], "action": "erase"}).status_code == 422


def test_edit_pin_and_rotate(
    client: TestClient, session: Session, moderator: Any, app: Any
) -> None:
    campaign = make_campaign(session)
    item = photo_submission(app, session, campaign)
    asset = session.exec(select(MediaAsset).where(MediaAsset.submission_id == item.id)).one()
    body = {
        "text": "Мы помним",
        "author_name": " Аня ",
        "alt_texts": {str(asset.id): "Женщина с табличкой"},
    }
    response = api(client, f"/submissions/{item.id}/edit", body)
    assert response.status_code == 200
    assert (response.json()["text"], response.json()["author_name"]) == ("Мы помним", "Аня")
    session.expire_all()
    assert session.get(MediaAsset, asset.id).alt_text == "Женщина с табличкой"  # type: ignore[union-attr]
    assert (
        api(client, f"/submissions/{item.id}/edit", {"alt_texts": {"999999": "x"}}).status_code
        == 422
    )
    assert api(client, f"/submissions/{item.id}/edit", {"text": "x" * 5001}).status_code == 422

    assert api(client, f"/submissions/{item.id}/pin", {"pinned": True}).json()["pinned"] is True
    assert api(client, f"/submissions/{item.id}/pin", {"pinned": False}).json()["pinned"] is False

    old_keys = dict(asset.keys)
    response = api(client, f"/submissions/{item.id}/rotate", {"degrees": 90})
    assert response.status_code == 200
    (image,) = response.json()["images"]
    assert (image["width"], image["height"]) == (asset.height, asset.width)
    assert set(image["keys"].values()).isdisjoint(old_keys.values())
    for key in old_keys.values():
        assert client.get(f"/media/{key}").status_code == 404
    rotated = client.get(f"/media/{image['keys']['slide']}")
    assert rotated.status_code == 200
    import io

    with Image.open(io.BytesIO(rotated.content)) as turned:
        assert turned.size == (asset.height, asset.width)
        assert not turned.info.get("exif")
    assert api(client, f"/submissions/{item.id}/rotate", {"degrees": 45}).status_code == 422
    actions = [
        e.action
        for e in session.exec(select(AuditEntry).where(AuditEntry.submission_id == item.id))
    ]
    assert {"edit", "pin", "unpin", "rotate"} <= set(actions)


def test_form_fallbacks(client: TestClient, session: Session, moderator: Any) -> None:
    campaign = make_campaign(session)
    a, b, c = (make_submission(session, campaign) for _ in range(3))
    token = csrf(client)
    response = client.post(
        f"/moderate/{a.id}/approve",
        data={"csrf_token": token, "back": "/moderate?status=pending"},
        follow_redirects=False,
    )
    assert (
        response.status_code == 303 and response.headers["location"] == "/moderate?status=pending"
    )
    client.post(f"/moderate/{b.id}/reject", data={"csrf_token": token, "reason": "нет"})
    client.post(
        "/moderate/bulk",
        data={
            "csrf_token": token,
            "ids": [str(c.id)],
            "action": "approve",
            "back": "https://evil.example",
        },
    )
    assert client.post(f"/moderate/{a.id}/explode", data={"csrf_token": token}).status_code == 404
    session.expire_all()
    assert [session.get(Submission, s.id).status for s in (a, b, c)] == [  # type: ignore[union-attr]
        S.approved,
        S.rejected,
        S.approved,
    ]


def test_takedown_reaches_a_running_slideshow(
    client: TestClient, session: Session, moderator: Any, app: Any
) -> None:
    from aggregator.services.slideshows_feed import FeedCache

    # No cache between polls: the test proves "the next poll", the TTL is the slideshow's.
    app.state.slideshow_feed_cache = FeedCache(ttl=0)
    campaign = make_campaign(session)
    item = photo_submission(app, session, campaign)
    _event, link = make_event(session, campaign)
    assert api(client, f"/submissions/{item.id}/approve").status_code == 200
    feed = client.get(f"/show/{link.token}/feed.json")
    assert feed.status_code == 200
    assert item.public_id in feed.text
    image_urls = [u for u in _urls(feed.json()) if "/img/" in u or "/media/" in u]
    assert image_urls and all(client.get(u).status_code == 200 for u in image_urls)
    assert api(client, f"/submissions/{item.id}/remove", {"reason": "withdrawn"}).status_code == 200
    after = client.get(f"/show/{link.token}/feed.json")
    assert after.status_code == 200 and item.public_id not in after.text
    for url in image_urls:
        assert client.get(url).status_code in (404, 410)


def _urls(document: Any) -> list[str]:
    """Every string in a JSON document that looks like a local URL."""
    if isinstance(document, dict):
        return [u for value in document.values() for u in _urls(value)]
    if isinstance(document, list):
        return [u for value in document for u in _urls(value)]
    if isinstance(document, str) and (
        document.startswith("/") or document.startswith("http://testserver/")
    ):
        return [document.replace("http://testserver", "")]
    return []


@pytest.mark.parametrize("start", [S.pending, S.approved, S.rejected, S.removed])
def test_withdraw_from_any_state_erases_files(
    client: TestClient, session: Session, app: Any, start: S
) -> None:
    from aggregator.services import takedown

    item = photo_submission(app, session, make_campaign(session))
    asset = session.exec(select(MediaAsset).where(MediaAsset.submission_id == item.id)).one()
    keys = list(asset.keys.values())
    if start != S.pending:
        path = {
            S.approved: [S.approved],
            S.rejected: [S.rejected],
            S.removed: [S.approved, S.removed],
        }
        from aggregator.services.moderation import transition

        for step in path[start]:
            transition(session=session, submission_id=int(item.id or 0), to=step)
    for _ in range(2):  # withdrawing twice is harmless
        done = takedown.withdraw(
            session=session, storage=app.state.storage, submission_id=int(item.id or 0)
        )
        assert done.status == S.withdrawn
    assert not any(app.state.storage.exists(key) for key in keys)
    assert all(client.get(f"/media/{key}").status_code == 404 for key in keys)
    actions = [
        (e.action, e.to_status)
        for e in session.exec(select(AuditEntry).where(AuditEntry.submission_id == item.id))
    ]
    assert actions.count(("transition", "withdrawn")) == 1
