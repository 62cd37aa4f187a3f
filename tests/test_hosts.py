"""Host pages: events, settings, share links, exports and live control, with access rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.models import Event, EventHost, ExportJob, Role, ShareLink
from tests.factories import jpeg_bytes, make_campaign, make_event, make_source, make_user
from tests.moderation_support import csrf, fresh_session, login
from tests.slideshow_support import photo


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


def _host_of(session: Session, event: Event) -> Any:
    host = make_user(session, Role.host)
    session.add(EventHost(event_id=event.id, user_id=host.id))  # type: ignore[arg-type]
    session.commit()
    return host


def _settings_form(client: TestClient, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": csrf(client),
        "name": "Вечер памяти",
        "starts_at": "2027-01-27T18:00",
        "interval": "10",
        "order": "shuffled",
        "transition": "none",
        "captions": ["name", "message"],
        "theme": "dark",
        "qr_every": "5",
        "intro_title": "Мы помним",
        "intro_text": "Біз еске аламыз",
        "closing_title": "",
        "closing_text": "",
        "silence_seconds": "45",
        "silence_slide": "1",
        "language": "ru",
        "filter_cities": "Алматы, Астана",
        "filter_languages": "ru, kk",
        "date_from": "2027-01-20",
        "date_to": "2027-01-28",
    }
    form.update(overrides)
    return form


def test_hosts_see_only_their_events(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    mine, _ = make_event(session, campaign, name="Mine")
    other, _ = make_event(session, campaign, name="Other")
    host = _host_of(session, mine)
    login(client, host.email)
    listing = client.get("/admin/events")
    assert listing.status_code == 200
    assert "Mine" in listing.text and "Other" not in listing.text
    assert client.get(f"/admin/events/{mine.id}").status_code == 200
    for path in ("", "/control", "/control.json", "/exports/1.json", "/exports/1/download"):
        assert client.get(f"/admin/events/{other.id}{path}").status_code == 404, path
    token = csrf(client)
    posts = ["", "/control", "/links", "/exports"]
    for path in posts:
        data = {"csrf_token": token, "action": "blank", "format": "pdf", "name": "x"}
        assert client.post(f"/admin/events/{other.id}{path}", data=data).status_code == 404, path
    assert client.get("/admin/events/new").status_code == 403  # hosts do not create events


def test_anonymous_goes_to_login_and_forms_need_csrf(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    event, _ = make_event(session, campaign)
    response = client.get(f"/admin/events/{event.id}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    moderator = make_user(session, Role.moderator)
    login(client, moderator.email)
    response = client.post(f"/admin/events/{event.id}/control", data={"action": "blank"})
    assert response.status_code == 403


def test_create_event_and_save_every_setting(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    extra = make_campaign(session)
    source = make_source(session, campaign)
    login(client, make_user(session, Role.moderator).email)
    assert client.get("/admin/events/new").status_code == 200
    bad = client.post(
        "/admin/events/new",
        data={"csrf_token": csrf(client), "campaign_id": str(campaign.id), "name": " "},
    )
    assert bad.status_code == 422
    created = client.post(
        "/admin/events/new",
        data={"csrf_token": csrf(client), "campaign_id": str(campaign.id), "name": "Evening"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    event = session.exec(select(Event).where(Event.name == "Evening")).one()
    assert session.exec(select(ShareLink).where(ShareLink.event_id == event.id)).first()

    form = _settings_form(client, extra_campaigns=[str(extra.id)], filter_sources=[str(source.id)])
    saved = client.post(f"/admin/events/{event.id}", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    session.refresh(event)
    s = event.settings
    assert event.name == "Вечер памяти" and event.starts_at is not None
    assert (s["interval"], s["order"], s["transition"], s["theme"]) == (
        10,
        "shuffled",
        "none",
        "dark",
    )
    assert s["captions"] == ["name", "message"] and s["qr_every"] == 5
    assert s["intro"] == {"title": "Мы помним", "text": "Біз еске аламыз"}
    assert s["silence_seconds"] == 45 and s["silence_slide"] is True and s["language"] == "ru"
    assert s["extra_campaigns"] == [extra.id]
    assert s["filters"] == {
        "sources": [source.id],
        "cities": ["Алматы", "Астана"],
        "languages": ["ru", "kk"],
        "date_from": "2027-01-20",
        "date_to": "2027-01-28",
    }
    page = client.get(f"/admin/events/{event.id}?saved=1")
    assert "Мы помним" in page.text and 'value="10"' in page.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval", "2"),
        ("interval", "ten"),
        ("order", "random"),
        ("qr_every", "-1"),
        ("silence_seconds", "5000"),
        ("language", "xx"),
        ("date_to", "2027-01-01"),
        ("date_from", "yesterday"),
        ("intro_title", "x" * 201),
        ("extra_campaigns", "999"),
    ],
)
def test_settings_are_validated(
    client: TestClient, session: Session, field: str, value: str
) -> None:
    campaign = make_campaign(session)
    event, _ = make_event(session, campaign)
    login(client, make_user(session, Role.admin).email)
    before = dict(event.settings)
    response = client.post(
        f"/admin/events/{event.id}", data=_settings_form(client, **{field: value})
    )
    assert response.status_code == 422
    assert f'id="{field}"' not in response.text or 'aria-invalid="true"' in response.text
    session.refresh(event)
    assert event.settings == before


def test_logo_upload(client: TestClient, session: Session, app: Any) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    login(client, make_user(session, Role.admin).email)
    files = {"logo": ("logo.jpg", jpeg_bytes(300, 200), "image/jpeg")}
    response = client.post(
        f"/admin/events/{event.id}",
        data=_settings_form(client),
        files=files,
        follow_redirects=False,
    )
    assert response.status_code == 303
    session.refresh(event)
    assert app.state.storage.exists(event.settings["logo"])
    assert client.get(f"/show/{link.token}/logo").status_code == 200
    junk = {"logo": ("logo.jpg", b"not an image", "image/jpeg")}
    assert (
        client.post(
            f"/admin/events/{event.id}", data=_settings_form(client), files=junk
        ).status_code
        == 422
    )


def test_share_links_create_and_revoke(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    event, first = make_event(session, campaign)
    host = _host_of(session, event)
    login(client, host.email)
    response = client.post(
        f"/admin/events/{event.id}/links",
        data={"csrf_token": csrf(client), "layout": "wall", "days": "2"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    links = session.exec(select(ShareLink).where(ShareLink.event_id == event.id)).all()
    wall = next(link for link in links if link.id != first.id)
    assert wall.layout == "wall" and wall.expires_at is not None
    assert len(wall.token) >= 22  # ≥ 128 bits
    assert client.get(f"/show/{wall.token}").status_code == 200
    client.post(
        f"/admin/events/{event.id}/links/{first.id}/revoke", data={"csrf_token": csrf(client)}
    )
    assert client.get(f"/show/{first.token}/feed.json").status_code == 404
    bad = client.post(
        f"/admin/events/{event.id}/links", data={"csrf_token": csrf(client), "days": "9999"}
    )
    assert bad.status_code == 422


def test_control_actions_reach_the_feed_and_screens_are_listed(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    pinned = photo(session, app.state.storage, campaign, author_name="Пётр")
    from aggregator.models import utcnow

    pinned.pinned_at = utcnow()
    session.add(pinned)
    session.commit()
    login(client, make_user(session, Role.moderator).email)
    url = f"/admin/events/{event.id}/control"
    page = client.get(url)
    assert page.status_code == 200 and "Пётр" in page.text
    answer = client.post(
        url,
        data={"csrf_token": csrf(client), "action": "blank"},
        headers={"Accept": "application/json"},
    )
    assert answer.json()["control"]["blank"] is True
    assert client.get(f"/show/{link.token}/feed.json").json()["control"]["blank"] is True
    jump = client.post(
        url,
        data={"csrf_token": csrf(client), "action": "jump", "item": pinned.public_id},
        follow_redirects=False,
    )
    assert jump.status_code == 303
    feed = client.get(f"/show/{link.token}/feed.json").json()
    assert feed["control"]["command"] == {"seq": 2, "action": "jump", "item": pinned.public_id}
    assert feed["control"]["blank"] is False
    assert client.post(url, data={"csrf_token": csrf(client), "action": "jump"}).status_code == 422
    assert (
        client.post(url, data={"csrf_token": csrf(client), "action": "explode"}).status_code == 404
    )
    silence = client.post(
        url,
        data={"csrf_token": csrf(client), "action": "silence"},
        headers={"Accept": "application/json"},
    ).json()["control"]
    assert silence["silence_until"] is not None
    beat = client.post(
        f"/show/{link.token}/heartbeat",
        json={"screen": "hall-projector", "showing": pinned.public_id, "label": "1920×1080"},
        headers={"X-CSRF-Token": csrf(client)},
    )
    assert beat.status_code == 204
    screens = client.get(f"{url}.json").json()["screens"]
    assert screens[0]["showing"] == pinned.public_id and screens[0]["connected"] is True
    assert screens[0]["showing_name"] == "Пётр" and screens[0]["thumb"].startswith("/media/")


def test_export_from_the_event_page(client: TestClient, session: Session, app: Any) -> None:
    campaign = make_campaign(session)
    event, _ = make_event(session, campaign)
    photo(session, app.state.storage, campaign)
    host = _host_of(session, event)
    login(client, host.email)
    started = client.post(
        f"/admin/events/{event.id}/exports",
        data={"csrf_token": csrf(client), "format": "pdf"},
        headers={"Accept": "application/json"},
    )
    assert started.status_code == 202
    status_url = f"/admin/events/{event.id}/exports/{started.json()['id']}.json"
    deadline = time.monotonic() + 60
    job = started.json()
    while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(status_url).json()
    assert job["status"] == "done", job
    download = client.get(job["download"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")
    assert "attachment" in download.headers["content-disposition"]
    page = client.get(f"/admin/events/{event.id}")
    assert job["download"] in page.text
    stored = session.exec(select(ExportJob)).one()
    assert stored.progress == 1.0 and stored.finished_at is not None
