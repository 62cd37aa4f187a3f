"""The public gallery: consent and status filtering, takedowns, keyset pagination, filters,
photo pages, Open Graph tags, the embed strip and its framing headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from aggregator.errors import InvalidInput
from aggregator.models import Source, SubmissionStatus
from aggregator.services.gallery import (
    Filters,
    decode_cursor,
    encode_cursor,
    parse_filters,
    public_items,
)
from aggregator.services.moderation import transition
from aggregator.web.templating import render
from tests.factories import make_campaign, make_source, make_submission
from tests.gallery_support import approved, real_photo

T0 = datetime(2025, 1, 27, 12, 0, tzinfo=UTC)


def soup(response: Any) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "html.parser")


def tile_ids(page: BeautifulSoup) -> list[str]:
    return [str(a["href"]).rsplit("/", 1)[1] for a in page.select(".gallery-tile a.tile-link")]


# -- what is public ------------------------------------------------------------------------


def test_only_approved_web_consented_items_are_public(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    shown = approved(session, campaign, posted_at=T0)
    projection_only = approved(session, campaign, consent=["projection"], posted_at=T0)
    archive_only = approved(session, campaign, consent=["projection", "archive"], posted_at=T0)
    hidden = [
        make_submission(session, campaign, status=status, posted_at=T0)
        for status in (
            SubmissionStatus.pending,
            SubmissionStatus.rejected,
            SubmissionStatus.removed,
            SubmissionStatus.withdrawn,
        )
    ]
    no_media = approved(session, campaign, media=0, posted_at=T0)
    other = approved(session, make_campaign(session), posted_at=T0)

    ids = tile_ids(soup(client.get(f"/c/{campaign.slug}/gallery")))
    assert ids == [shown.public_id]
    embed = soup(client.get(f"/c/{campaign.slug}/embed"))
    assert [str(a["href"]).rsplit("/", 1)[1] for a in embed.select(".embed-strip a")] == ids

    for never in (projection_only, archive_only, no_media, other, *hidden[:2]):
        assert client.get(f"/c/{campaign.slug}/p/{never.public_id}").status_code == 404
    for gone in hidden[2:]:  # removed, withdrawn
        assert client.get(f"/c/{campaign.slug}/p/{gone.public_id}").status_code == 410
    assert client.get(f"/c/{campaign.slug}/p/{shown.public_id}").status_code == 200


def test_takedown_leaves_the_gallery_at_once(
    client: TestClient, session: Session, app: Any
) -> None:
    from aggregator.services.takedown import take_down

    campaign = make_campaign(session)
    keep = real_photo(session, app.state.storage, campaign, posted_at=T0)
    doomed = real_photo(session, app.state.storage, campaign, posted_at=T0 + timedelta(hours=1))
    page = soup(client.get(f"/c/{campaign.slug}/gallery"))
    assert tile_ids(page) == [doomed.public_id, keep.public_id]
    assert doomed.public_id in client.get(f"/c/{campaign.slug}/feed.xml").text
    assert len(client.get(f"/api/v1/campaigns/{campaign.slug}/items").json()["items"]) == 2
    thumb = page.select_one(f'a[href$="{doomed.public_id}"] img')["src"]  # type: ignore[index]
    photo = soup(client.get(f"/c/{campaign.slug}/p/{doomed.public_id}"))
    slide = photo.select_one(".photo-figure img")["src"]  # type: ignore[index]
    assert client.get(thumb).status_code == client.get(slide).status_code == 200

    take_down(
        session=session,
        storage=app.state.storage,
        submission_id=doomed.id,  # type: ignore[arg-type]
        actor_id=None,
        actor_label="test",
        reason="asked by the family",
    )

    assert tile_ids(soup(client.get(f"/c/{campaign.slug}/gallery"))) == [keep.public_id]
    assert doomed.public_id not in client.get(f"/c/{campaign.slug}/embed").text
    api = client.get(f"/api/v1/campaigns/{campaign.slug}/items").json()
    assert [i["id"] for i in api["items"]] == [keep.public_id]
    assert doomed.public_id not in client.get(f"/c/{campaign.slug}/feed.xml").text
    assert client.get(f"/c/{campaign.slug}/p/{doomed.public_id}").status_code == 410
    assert client.get(thumb).status_code in (404, 410)
    assert client.get(slide).status_code in (404, 410)


def test_status_change_alone_hides_an_item(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    item = approved(session, campaign)
    assert tile_ids(soup(client.get(f"/c/{campaign.slug}/gallery"))) == [item.public_id]
    transition(
        session=session,
        submission_id=item.id,  # type: ignore[arg-type]
        to=SubmissionStatus.withdrawn,
        actor_label="participant",
    )
    assert tile_ids(soup(client.get(f"/c/{campaign.slug}/gallery"))) == []


# -- pagination ----------------------------------------------------------------------------


def test_keyset_pages_stay_stable_while_new_items_arrive(session: Session) -> None:
    campaign = make_campaign(session)
    # Ties on posted_at are common (an import stamps many items alike): the public id breaks them.
    original = [
        approved(session, campaign, posted_at=T0 + timedelta(minutes=i // 3)) for i in range(25)
    ]
    expected = [
        s.public_id
        for s in sorted(original, key=lambda s: (s.posted_at, s.public_id), reverse=True)
    ]
    seen: list[str] = []
    page = public_items(session=session, campaign=campaign, limit=7)
    seen += [i.public_id for i in page.items]
    arrivals = 0
    while page.next_cursor:
        # Between two page loads: newer photos, a photo at the boundary's exact time, an
        # older one, and a takedown of something already seen.
        last = page.items[-1]
        approved(session, campaign, posted_at=T0 + timedelta(days=1, minutes=arrivals))
        approved(session, campaign, posted_at=last.posted_at)
        arrivals += 1
        page = public_items(session=session, campaign=campaign, before=page.next_cursor, limit=7)
        seen += [i.public_id for i in page.items]
    original_seen = [pid for pid in seen if pid in set(expected)]
    assert original_seen == expected  # nothing skipped, nothing twice, same order
    assert len(seen) == len(set(seen))
    # Items that arrived at the boundary's time sort by public id: some fall on pages not yet
    # read (and are shown), the others before the boundary (seen on a fresh first page).


def test_gallery_older_and_newest_links(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    items = [approved(session, campaign, posted_at=T0 + timedelta(minutes=i)) for i in range(30)]
    first = soup(client.get(f"/c/{campaign.slug}/gallery"))
    assert len(tile_ids(first)) == 24
    older = first.select_one('.gallery-pages a[rel="next"]')
    assert older is not None and first.select_one(".gallery-pages a:not([rel])") is None
    second = soup(client.get(str(older["href"])))
    assert tile_ids(second) == [s.public_id for s in reversed(items[:6])]
    assert second.select_one('.gallery-pages a[rel="next"]') is None
    newest = second.select_one(".gallery-pages a:not([rel])")
    assert newest is not None and newest["href"] == f"/c/{campaign.slug}/gallery"


@pytest.mark.parametrize(
    "cursor", ["nope", "1.2.3", "9" * 18 + ".abc", "-" + "9" * 17 + ".x", "12.", ".abc", "1.a b"]
)
def test_bad_cursor_is_a_clear_422(client: TestClient, session: Session, cursor: str) -> None:
    campaign = make_campaign(session)
    response = client.get(f"/c/{campaign.slug}/gallery", params={"before": cursor})
    assert response.status_code == 422


def test_cursor_round_trip() -> None:
    moment = datetime(2025, 5, 31, 9, 30, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, "Ab_-9")) == (moment, "Ab_-9")
    with pytest.raises(InvalidInput):
        decode_cursor("")


# -- filters -------------------------------------------------------------------------------


def test_city_and_language_filters(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    almaty_ru = approved(session, campaign, city="Алматы", language="ru", posted_at=T0)
    almaty_kk = approved(
        session, campaign, city="Алматы", language="kk", posted_at=T0 + timedelta(minutes=1)
    )
    karaganda = approved(
        session, campaign, city="Karaganda", language="ru-RU", posted_at=T0 + timedelta(minutes=2)
    )
    approved(session, campaign, city=None, language="en", posted_at=T0 + timedelta(minutes=3))

    def ids(**params: str) -> list[str]:
        return tile_ids(soup(client.get(f"/c/{campaign.slug}/gallery", params=params)))

    assert ids(city="алматы") == [almaty_kk.public_id, almaty_ru.public_id]
    assert ids(city="  Алматы ") == [almaty_kk.public_id, almaty_ru.public_id]
    assert ids(city="KARAGANDA") == [karaganda.public_id]
    assert ids(language="ru") == [karaganda.public_id, almaty_ru.public_id]
    assert ids(city="Алматы", language="kk") == [almaty_kk.public_id]
    assert ids(city="Nowhere") == []
    assert (
        "No photos match these filters."
        in client.get(f"/c/{campaign.slug}/gallery", params={"city": "Nowhere"}).text
    )
    assert client.get(f"/c/{campaign.slug}/gallery", params={"language": "r1"}).status_code == 422
    assert parse_filters(" ", "") == Filters()


def test_filtered_older_link_keeps_the_filter(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    for i in range(26):
        approved(session, campaign, city="Almaty", posted_at=T0 + timedelta(minutes=i))
        approved(session, campaign, city="Astana", posted_at=T0 + timedelta(minutes=i))
    first = soup(client.get(f"/c/{campaign.slug}/gallery", params={"city": "Almaty"}))
    href = str(first.select_one('.gallery-pages a[rel="next"]')["href"])  # type: ignore[index]
    assert "city=Almaty" in href
    second = soup(client.get(href))
    assert len(tile_ids(second)) == 2
    assert {t.get_text(strip=True) for t in second.select(".tile-city")} == {"Almaty"}


# -- what the pages show --------------------------------------------------------------------


def test_gallery_grid_is_calm_and_lazy(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    approved(session, campaign, author_name="Gulnara", city="Almaty")
    page = soup(client.get(f"/c/{campaign.slug}/gallery"))
    img = page.select_one(".gallery-tile img")
    assert img is not None
    assert img["loading"] == "lazy"
    assert img["width"] and img["height"] and img["alt"]
    assert img["src"].startswith("/media/")  # type: ignore[union-attr]
    text = page.get_text(" ").lower()
    for word in ("like", "views", "trending", "popular"):
        assert word not in text
    assert page.select_one('link[rel="alternate"][type="application/atom+xml"]') is not None


def test_photo_page_shows_the_details_and_og_tags(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session, slug="we-remember-2025")
    source = make_source(session, campaign)
    item = real_photo(
        session,
        app.state.storage,
        campaign,
        author_name="Айгерім",
        city="Қарағанды",
        text="Атам үшін.\nБіз еске аламыз.",
        language="kk",
        posted_at=datetime(2025, 5, 31, 10, 0, tzinfo=UTC),
        alt="Бала «Біз еске аламыз» деген жазуы бар парақты ұстап тұр.",
    )
    item.source_id = source.id
    item.url = "https://mastodon.example/@aigerim/1"
    session.add(item)
    session.commit()

    response = client.get(f"/c/{campaign.slug}/p/{item.public_id}", params={"lang": "ru"})
    page = soup(response)
    og = {str(m["property"]): str(m["content"]) for m in page.select("meta[property^=og]")}
    base = "http://testserver"
    assert og["og:url"] == f"{base}/c/{campaign.slug}/p/{item.public_id}"
    assert og["og:image"].startswith(f"{base}/media/")
    assert og["og:image:alt"].startswith("Бала")
    assert client.get(og["og:image"]).headers["content-type"] == "image/jpeg"
    figure = page.select_one(".photo-figure img")
    assert figure is not None and figure["alt"].startswith("Бала")  # type: ignore[union-attr]
    assert "Біз еске аламыз" in page.select_one(".photo-caption").get_text()  # type: ignore[union-attr]
    details = page.select_one(".photo-details").get_text(" ")  # type: ignore[union-attr]
    assert "Айгерім" in details and "Қарағанды" in details
    assert "31 мая 2025" in details  # the date in the reader's language
    link = page.select_one('.photo-details a[href^="https://mastodon.example"]')
    assert link is not None and "noopener" in link["rel"]
    assert page.select_one("article")["lang"] == "kk"  # type: ignore[index]


def test_gallery_speaks_russian_and_kazakh(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    approved(session, campaign)
    ru = client.get(f"/c/{campaign.slug}/gallery", params={"lang": "ru"}).text
    kk = client.get(f"/c/{campaign.slug}/gallery", params={"lang": "kk"}).text
    assert "Город или община" in ru
    assert "Қала немесе қауым" in kk


def test_unknown_campaign_and_photo_are_404(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    assert client.get("/c/no-such/gallery").status_code == 404
    assert client.get("/c/no-such/embed").status_code == 404
    assert client.get(f"/c/{campaign.slug}/p/{'x' * 500}").status_code == 404


def test_collected_item_names_its_platform(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    source: Source = make_source(session, campaign, kind="bluesky", config={})
    item = approved(session, campaign, source_id=source.id, url="https://bsky.app/post/1")
    page = soup(client.get(f"/c/{campaign.slug}/p/{item.public_id}"))
    assert "Bluesky" in page.select_one(".photo-details").get_text()  # type: ignore[union-attr]
    unsafe = approved(session, campaign, url="javascript:alert(1)")
    page = soup(client.get(f"/c/{campaign.slug}/p/{unsafe.public_id}"))
    assert "javascript:" not in str(page.select_one(".photo-details"))


# -- embed ---------------------------------------------------------------------------------


def test_embed_may_be_framed_by_anyone_but_the_gallery_may_not(
    client: TestClient, session: Session
) -> None:
    campaign = make_campaign(session)
    approved(session, campaign)
    embed = client.get(f"/c/{campaign.slug}/embed")
    assert embed.status_code == 200
    csp = embed.headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "script-src 'none'" in csp
    assert embed.headers.get("x-frame-options", "").upper() not in ("DENY", "SAMEORIGIN")
    for link in soup(embed).select("a"):
        assert link["target"] == "_blank" and "noopener" in link["rel"]
    gallery = client.get(f"/c/{campaign.slug}/gallery")
    assert "frame-ancestors 'none'" in gallery.headers["content-security-policy"]
    assert gallery.headers["x-frame-options"] == "DENY"


def test_embed_snippet_partial(app: Any, client: TestClient, session: Session) -> None:
    campaign = make_campaign(session, name='Memory "27 January"')

    # A page that includes the partial, as the admin page does.
    @app.get("/_test/snippet")  # type: ignore[untyped-decorator]
    def snippet(request: Request) -> Response:
        return render(request, "gallery/_embed_snippet.html", {"campaign": campaign})

    page = soup(client.get("/_test/snippet"))
    code = page.select_one("textarea.embed-code").get_text()  # type: ignore[union-attr]
    snippet_html = BeautifulSoup(code, "html.parser").select_one("iframe")
    assert snippet_html is not None
    assert snippet_html["src"] == f"http://testserver/c/{campaign.slug}/embed"
    assert snippet_html["title"] == "Memory '27 January'"
    assert page.select_one("button.embed-copy") is not None


# -- the wall layout -------------------------------------------------------------------------


def test_wall_links_serve_the_wall_layout(client: TestClient, session: Session) -> None:
    """A share link with layout "wall" opens wall.html (the slideshow route chooses it)."""
    from tests.factories import make_event

    campaign = make_campaign(session)
    _event, link = make_event(session, campaign)
    link.layout = "wall"
    session.add(link)
    session.commit()
    page = soup(client.get(f"/show/{link.token}"))
    wall = page.select_one("main#wall")
    assert wall is not None, "routes/slideshow.py show_page must render slideshow/wall.html"
    assert wall["data-feed"] == f"/show/{link.token}/feed.json"
    assert page.select_one('script[src$="/js/wall.js"]') is not None
