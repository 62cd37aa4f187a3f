"""The slideshow service and the share-link routes: selection, order, feed, links, images."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from aggregator import i18n
from aggregator.models import Event, ShareLink, Submission, SubmissionStatus, utcnow
from aggregator.services.events import new_share_token
from aggregator.services.slideshows import (
    build_slides,
    clean_message,
    slide_from_row,
    text_direction,
)
from aggregator.services.slideshows_control import apply_control
from aggregator.services.slideshows_document import feed_item, program
from aggregator.services.slideshows_feed import ItemJson, items_json
from aggregator.services.slideshows_settings import effective_settings
from tests.factories import make_campaign, make_event, make_source, make_submission
from tests.slideshow_support import photo, take_down


def _feed(client: TestClient, link: ShareLink) -> dict[str, Any]:
    response = client.get(f"/show/{link.token}/feed.json")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _set(session: Session, event: Event, **settings: Any) -> None:
    event.settings = {**event.settings, **settings}
    session.add(event)
    session.commit()


def test_feed_has_only_approved_items_with_projection_consent(
    client: TestClient, session: Session, app: Any
) -> None:
    storage = app.state.storage
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    shown = photo(session, storage, campaign, author_name="Анна", city="Алматы")
    photo(session, storage, campaign, approve=False)  # pending
    photo(session, storage, campaign, consent=("web", "archive"))  # no projection consent
    rejected = photo(session, storage, campaign, approve=False)
    from aggregator.services.moderation import transition

    transition(session=session, submission_id=rejected.id, to=SubmissionStatus.rejected)  # type: ignore[arg-type]
    other = make_campaign(session)
    photo(session, storage, other)  # another campaign's photo

    feed = _feed(client, link)
    assert [item["id"] for item in feed["items"]] == [shown.public_id]
    item = feed["items"][0]
    assert item["caption"]["name"] == "Анна"
    assert item["caption"]["city"] == "Алматы"
    assert item["width"] > 0 and item["height"] > 0
    assert item["color"].startswith("#")
    assert item["alt"]  # a description even when the author gave none
    assert set(item) >= {
        "id",
        "image",
        "thumb",
        "width",
        "height",
        "color",
        "alt",
        "caption",
        "pinned",
    }
    # Only allowlisted fields: nothing about the uploader beyond the caption.
    assert "email" not in response_text(client, link) and "receipt" not in response_text(
        client, link
    )
    assert feed["control"]["blank"] is False
    image = client.get(item["image"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


def response_text(client: TestClient, link: ShareLink) -> str:
    return client.get(f"/show/{link.token}/feed.json").text


def test_takedown_leaves_the_feed_and_its_image_404s(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    _event, link = make_event(session, campaign)
    keep = photo(session, app.state.storage, campaign)
    gone = photo(session, app.state.storage, campaign)
    before = _feed(client, link)
    assert {i["id"] for i in before["items"]} == {keep.public_id, gone.public_id}
    image_url = next(i["image"] for i in before["items"] if i["id"] == gone.public_id)
    take_down(session, gone)
    after = _feed(client, link)
    assert [i["id"] for i in after["items"]] == [keep.public_id]
    assert after["version"] != before["version"]
    assert client.get(image_url).status_code == 404


def test_revoked_expired_and_unknown_links_404_everywhere(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    item = photo(session, app.state.storage, campaign)
    paths = ["", "/feed.json", "/events", f"/img/{item.public_id}", "/qr.svg", "/logo"]
    assert client.get(f"/show/{link.token}").status_code == 200
    link.revoked_at = utcnow()
    session.add(link)
    expired = ShareLink(
        event_id=event.id,  # type: ignore[arg-type]
        token=new_share_token(),
        expires_at=utcnow() - timedelta(minutes=1),
    )
    session.add(expired)
    session.commit()
    for token in (link.token, expired.token, "x" * 32, new_share_token()):
        for path in paths:
            assert client.get(f"/show/{token}{path}").status_code == 404, (token, path)
    response = client.post(
        f"/show/{link.token}/heartbeat",
        json={"screen": "screen-0001"},
        headers={"X-CSRF-Token": client.cookies.get("csrftoken") or ""},
    )
    assert response.status_code == 404


def test_share_token_opens_nothing_but_its_display(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    for path in (f"/admin/events/{event.id}", f"/admin/events/{event.id}/control", "/moderate"):
        response = client.get(f"{path}?token={link.token}", follow_redirects=False)
        assert response.status_code in {302, 303, 401, 403, 404}, path
    page = client.get(f"/show/{link.token}")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    assert page.headers["cache-control"] == "no-store"


def test_feed_etag_gives_304_until_something_changes(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    photo(session, app.state.storage, campaign)
    first = client.get(f"/show/{link.token}/feed.json")
    etag = first.headers["etag"]
    again = client.get(f"/show/{link.token}/feed.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    apply_control(session=session, event_id=event.id, action="blank")  # type: ignore[arg-type]
    changed = client.get(f"/show/{link.token}/feed.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["control"]["blank"] is True


def test_filters_order_and_pinned_first(session: Session, app: Any) -> None:
    storage = app.state.storage
    campaign = make_campaign(session)
    source = make_source(session, campaign)
    event, _link = make_event(session, campaign)
    day = datetime(2027, 1, 27, 12, tzinfo=UTC)
    old = photo(session, storage, campaign, posted_at=day - timedelta(days=3), city="Astana")
    mid = photo(session, storage, campaign, posted_at=day, city="Almaty", language="ru")
    new = photo(session, storage, campaign, posted_at=day + timedelta(hours=1), city="almaty ")
    ids = lambda: [s.submission for s in build_slides(session=session, event=event)]  # noqa: E731

    _set(session, event, order="chronological")
    assert ids() == [old.public_id, mid.public_id, new.public_id]
    _set(session, event, order="newest_replay")
    assert ids() == [new.public_id, mid.public_id, old.public_id]
    _set(session, event, order="shuffled")
    shuffled = ids()
    assert sorted(shuffled) == sorted([old.public_id, mid.public_id, new.public_id])
    assert ids() == shuffled  # deterministic per event

    new.pinned_at = utcnow()
    session.add(new)
    session.commit()
    _set(session, event, order="chronological")
    assert ids()[0] == new.public_id

    _set(session, event, filters={"cities": ["ALMATY"]})
    assert set(ids()) == {mid.public_id, new.public_id}
    _set(session, event, filters={"languages": ["ru"]})
    assert ids() == [mid.public_id]
    _set(session, event, filters={"date_from": "2027-01-27", "date_to": "2027-01-27"})
    assert set(ids()) == {mid.public_id, new.public_id}
    _set(session, event, filters={"sources": [source.id]})
    assert ids() == []


def test_every_image_of_a_post_is_a_slide_and_duplicates_show_once(
    session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    event, _link = make_event(session, campaign)
    post = photo(session, app.state.storage, campaign, images=2)
    slides = build_slides(session=session, event=event)
    assert [s.id for s in slides] == [post.public_id, f"{post.public_id}.1"]
    # Placeholder rows with the same sha256 as an existing image appear once.
    twin = make_submission(session, campaign, status=SubmissionStatus.approved)
    from sqlmodel import select

    from aggregator.models import MediaAsset

    asset = session.exec(select(MediaAsset).where(MediaAsset.submission_id == twin.id)).one()
    asset.sha256 = slides[0].sha256
    session.add(asset)
    session.commit()
    assert len(build_slides(session=session, event=event)) == 2


def test_program_adds_intro_silence_qr_and_closing(session: Session) -> None:
    campaign = make_campaign(session)
    event, _link = make_event(session, campaign)
    for _ in range(5):
        make_submission(session, campaign, status=SubmissionStatus.approved)
    _set(
        session,
        event,
        intro={"title": "Мы помним", "text": ""},
        closing={"title": "", "text": "Біз еске аламыз"},
        qr_every=2,
        silence_slide=True,
    )
    settings = effective_settings(event)
    slides = build_slides(session=session, event=event)
    steps = program(slides, settings, qr={"url": "http://x/c/a"})
    kinds = [s.kind for s in steps]
    assert kinds == [
        "intro",
        "silence",
        "photo",
        "photo",
        "qr",
        "photo",
        "photo",
        "qr",
        "photo",
        "closing",
    ]
    assert [s.kind for s in program(slides, settings)].count("qr") == 0


def test_caption_helpers() -> None:
    assert text_direction("אנחנו זוכרים") == "rtl"
    assert text_direction("Мы помним") == "ltr"
    assert text_direction("123", "he") == "rtl"
    long = "слово " * 100
    cut = clean_message(long)
    assert len(cut) <= 281 and cut.endswith("…")
    assert clean_message("  a \n\n b ") == "a b"
    # The same whitespace as the regex it replaced: every character Python calls a space.
    spaces = "".join(chr(c) for c in range(0x3000 + 1) if chr(c).isspace())
    assert re.fullmatch(r"\s+", spaces) is not None
    assert clean_message(f"{spaces}a{spaces}b{spaces}") == "a b"


@pytest.mark.parametrize("captions", [["name", "city", "message", "source"], ["message"], []])
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_item_json_is_exactly_json_dumps_of_feed_item(captions: list[str], lang: str) -> None:
    """The feed's fast serializer writes the bytes of the schema's definition (feed_item)."""
    gettext = i18n.translations(lang).gettext
    writer = ItemJson("/show/tok-en_1", captions, lang)
    tricky = 'q"uo\\te </script> \u2028 \x00\x1f tab\t é 😀 אנחנו'
    variants: list[dict[str, Any]] = [
        {},
        {"alt": "", "name": ""},
        {"alt": None, "name": tricky},
        {"alt": tricky, "city": tricky, "text": tricky, "handle": tricky, "language": None},
        {"position": 2, "pinned_at": "2025-05-09 10:00:00.000000", "color": tricky},
        {"posted_at": "2025-05-09 10:00:00.123456", "text": "אנחנו זוכרים"},
        {"posted_at": datetime(2025, 5, 9, 10, 0, tzinfo=UTC), "kind": "rss", "handle": None},
    ]
    for changes in variants:
        values: dict[str, Any] = {
            "id": 7,
            "public_id": "abc",
            "name": " Anna ",
            "handle": "@anna@example.org",
            "city": "Almaty",
            "text": "We  remember.",
            "language": "en",
            "consent": '["projection"]',
            "pinned_at": None,
            "posted_at": "2025-05-09 10:00:00.000000",
            "url": None,
            "position": 0,
            "keys": '{"slide": "k"}',
            "width": 1920,
            "height": 1080,
            "color": "#102030",
            "alt": "An alt",
            "sha256": "0123456789abcdef" * 4,
            "kind": "mastodon",
            "source_name": "A feed",
        }
        row = tuple({**values, **changes}.values())  # in the order of slide_rows' columns
        expected = feed_item(
            slide_from_row(row), captions, image_url=writer.image_url, gettext=gettext
        )
        written = items_json([writer.item(row)[-1]])
        assert written == json.dumps([expected], ensure_ascii=False, separators=(",", ":")).encode()
        assert json.loads(written) == [expected]


def test_captions_follow_the_event_settings(client: TestClient, session: Session, app: Any) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    photo(session, app.state.storage, campaign, text="אנחנו זוכרים", language="he")
    _set(session, event, captions=["message"])
    caption = _feed(client, link)["items"][0]["caption"]
    assert caption["name"] == "" and caption["city"] == ""
    assert caption["message"] == "אנחנו זוכרים" and caption["dir"] == "rtl"


def test_heartbeat_records_the_screen_and_needs_csrf(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    client.get(f"/show/{link.token}")  # sets the CSRF cookie
    token = client.cookies.get("csrftoken") or ""
    url = f"/show/{link.token}/heartbeat"
    body = {"screen": "screen-abc123", "showing": "intro", "label": "1920×1080"}
    assert client.post(url, json=body).status_code == 403
    assert client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 204
    assert client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 204
    from sqlmodel import select

    from aggregator.models import Screen

    session.commit()  # end the test's read snapshot (SQLite WAL) to see the route's writes
    screens = session.exec(select(Screen)).all()
    assert len(screens) == 1 and screens[0].showing == "intro"
    bad = client.post(url, json={"screen": "../../x"}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 422


def test_qr_code_and_page_render(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    _event, link = make_event(session, campaign)
    qr = client.get(f"/show/{link.token}/qr.svg")
    assert qr.status_code == 200 and qr.text.startswith("<svg")
    page = client.get(f"/show/{link.token}?lang=ru")
    assert page.status_code == 200
    assert 'id="stage"' in page.text and "slideshow.js" in page.text
    assert page.text.count('class="slide slide--photo"') == 3


def test_event_language_overrides_the_visitor(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    _set(session, event, language="kk")
    page = client.get(f"/show/{link.token}", headers={"Accept-Language": "en"})
    assert '<html lang="kk"' in page.text


def test_withdrawn_items_vanish(client: TestClient, session: Session, app: Any) -> None:
    campaign = make_campaign(session)
    _event, link = make_event(session, campaign)
    item = photo(session, app.state.storage, campaign)
    assert len(_feed(client, link)["items"]) == 1
    from aggregator.services.moderation import transition

    transition(session=session, submission_id=item.id, to=SubmissionStatus.withdrawn)  # type: ignore[arg-type]
    assert _feed(client, link)["items"] == []
    assert session.get(Submission, item.id) is not None


def test_incremental_feed_updates_match_a_full_rebuild(
    client: TestClient, session: Session, app: Any
) -> None:
    from aggregator.services.moderation import transition

    storage = app.state.storage
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    _set(session, event, order="shuffled")
    items = [photo(session, storage, campaign, author_name=f"P{n}") for n in range(4)]
    waiting = photo(session, storage, campaign, approve=False)
    url = f"/show/{link.token}/feed.json"

    def both() -> tuple[list[Any], list[Any]]:
        incremental = client.get(url).json()["items"]
        app.state.slideshow_feed_cache.clear()
        full = client.get(url).json()["items"]
        return incremental, full

    client.get(url)
    transition(session=session, submission_id=waiting.id, to=SubmissionStatus.approved)  # type: ignore[arg-type]
    incremental, full = both()
    assert incremental == full and len(full) == 5
    take_down(session, items[1])
    incremental, full = both()
    assert incremental == full and items[1].public_id not in {i["id"] for i in full}
    items[2].pinned_at = utcnow()
    session.add(items[2])
    session.commit()
    from aggregator.models import AuditEntry

    session.add(AuditEntry(submission_id=items[2].id, action="pin", actor_label="test"))
    session.commit()
    incremental, full = both()
    assert incremental == full and full[0]["id"] == items[2].public_id and full[0]["pinned"]


def test_full_reread_sees_changes_made_outside_the_services(
    client: TestClient, session: Session, app: Any
) -> None:
    """The periodic full re-read reuses unchanged rows' JSON but catches any changed column,
    even one written without an audit entry, and keeps the version when nothing changed."""
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    first, second = (photo(session, app.state.storage, campaign, city=c) for c in ("A", "B"))
    before = _feed(client, link)
    app.state.slideshow_feed_cache.max_age = 0.0  # every request is a full re-read
    assert _feed(client, link)["version"] == before["version"]
    first.city = "Changed"  # straight to the database: no audit entry
    session.add(first)
    second.status = SubmissionStatus.removed
    session.add(second)
    session.commit()
    after = _feed(client, link)
    assert after["version"] != before["version"]
    assert [i["caption"]["city"] for i in after["items"]] == ["Changed"]
    app.state.slideshow_feed_cache.clear()
    assert _feed(client, link)["items"] == after["items"]
