"""The Atom feed: parses with feedparser, carries Media RSS images, revalidates with ETags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import feedparser
from fastapi.testclient import TestClient
from sqlmodel import Session

from aggregator.services.gallery import FEED_SIZE
from aggregator.services.gallery_feed import MEDIA, xml_text
from tests.factories import make_campaign, make_source
from tests.gallery_support import approved, real_photo

T0 = datetime(2025, 5, 31, 9, 0, tzinfo=UTC)


def test_feed_parses_and_lists_image_enclosures(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session, slug="may-31", name="31 мая — День памяти")
    source = make_source(session, campaign, kind="bluesky", config={})
    older = real_photo(
        session,
        app.state.storage,
        campaign,
        author_name="Дина",
        city="Караганда",
        text="Прадед был в Карлаге.",
        posted_at=T0,
        alt="Мужчина держит табличку «Мы помним».",
    )
    newer = real_photo(
        session,
        app.state.storage,
        campaign,
        author_name="",
        city=None,
        text="",
        posted_at=T0 + timedelta(hours=1),
        alt="",
        url="https://bsky.app/profile/x/post/1",
    )
    newer.source_id = source.id
    session.add(newer)
    session.commit()

    response = client.get(f"/c/{campaign.slug}/feed.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "31 мая — День памяти"
    assert parsed.feed.link == f"http://testserver/c/{campaign.slug}/gallery"
    assert [e.link for e in parsed.entries] == [
        f"http://testserver/c/{campaign.slug}/p/{newer.public_id}",
        f"http://testserver/c/{campaign.slug}/p/{older.public_id}",
    ]
    first, second = parsed.entries
    assert second.title == "Дина · Караганда"
    assert second.summary == "Прадед был в Карлаге."
    assert first.title == campaign.sign_text  # no name given: the sign's words, never "None"
    for entry in parsed.entries:
        (enclosure,) = entry.enclosures
        assert enclosure.type == "image/jpeg"
        assert enclosure.href.startswith("http://testserver/media/")
        assert int(enclosure.length) > 0
        assert client.get(enclosure.href).headers["content-type"] == "image/jpeg"
        (content,) = entry.media_content
        assert content["url"] == enclosure.href
        assert (content["width"], content["height"]) == ("800", "600")
        assert content["medium"] == "image"
        assert entry.media_thumbnail[0]["url"].startswith("http://testserver/media/")
    # feedparser flattens media:description; read it from the XML itself.
    root = ET.fromstring(response.content)
    descriptions = [d.text for d in root.iter(f"{{{MEDIA}}}description")]
    assert descriptions == ["Мужчина держит табличку «Мы помним»."]
    via = [link for link in first.links if link.rel == "via"]
    assert via and via[0].href == "https://bsky.app/profile/x/post/1"
    assert parsed.feed.updated_parsed[:4] == (2025, 5, 31, 10)


def test_feed_survives_control_characters_and_markup(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    approved(
        session,
        campaign,
        author_name="Eve\x01\x1b<script>",
        text="Line\x0bbreak </summary><evil/> & done",
        city="A&B",
    )
    response = client.get(f"/c/{campaign.slug}/feed.xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title == "Eve<script> · A&B"
    assert "<evil/>" in entry.summary and "\x0b" not in entry.summary
    assert b"<evil/>" not in response.content and b"<script>" not in response.content
    assert xml_text("a\x00b\ufffec") == "abc"


def test_feed_is_bounded_newest_first(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    for i in range(FEED_SIZE + 5):
        approved(session, campaign, posted_at=T0 + timedelta(minutes=i))
    parsed = feedparser.parse(client.get(f"/c/{campaign.slug}/feed.xml").content)
    assert len(parsed.entries) == FEED_SIZE
    published = [e.published_parsed for e in parsed.entries]
    assert published == sorted(published, reverse=True)


def test_feed_etag_and_304(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    approved(session, campaign, posted_at=T0)
    url = f"/c/{campaign.slug}/feed.xml"
    first = client.get(url)
    etag = first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    approved(session, campaign, posted_at=T0 + timedelta(minutes=1))
    second = client.get(url, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag


def test_empty_and_unknown_feeds(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    parsed = feedparser.parse(client.get(f"/c/{campaign.slug}/feed.xml").content)
    assert not parsed.bozo and parsed.entries == []
    assert client.get("/c/nope/feed.xml").status_code == 404
