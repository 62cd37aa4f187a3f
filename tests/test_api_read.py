"""The public read API: shapes, absolute URLs, cursor pagination, ETag/304 and CORS scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from aggregator.models import SubmissionStatus
from aggregator.services.moderation import transition
from tests.factories import make_campaign, make_source, make_submission
from tests.gallery_support import (
    PUBLIC_CAMPAIGN_KEYS,
    PUBLIC_ITEM_KEYS,
    approved,
    json_keys,
    real_photo,
)

T0 = datetime(2025, 1, 27, 12, 0, tzinfo=UTC)


def items_of(client: TestClient, slug: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/campaigns/{slug}/items", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_campaign_list(client: TestClient, session: Session) -> None:
    campaign = make_campaign(
        session,
        slug="alzhir",
        name="ALZHIR",
        translations={"ru": {"name": "АЛЖИР", "consent": {"web": "secret wording"}}},
        languages=["en", "ru"],
    )
    response = client.get("/api/v1/campaigns")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert set(json_keys(body)) <= PUBLIC_CAMPAIGN_KEYS
    (only,) = body["campaigns"]
    assert only["slug"] == "alzhir"
    assert only["translations"]["ru"]["name"] == "АЛЖИР"
    assert only["links"] == {
        "page": "http://testserver/c/alzhir",
        "gallery": "http://testserver/c/alzhir/gallery",
        "items": "http://testserver/api/v1/campaigns/alzhir/items",
        "feed": "http://testserver/c/alzhir/feed.xml",
        "embed": "http://testserver/c/alzhir/embed",
    }
    assert campaign.id is not None and str(campaign.id) not in {only["slug"]}


def test_item_fields_and_absolute_image_urls(
    client: TestClient, session: Session, app: Any
) -> None:
    campaign = make_campaign(session)
    source = make_source(session, campaign, kind="mastodon")
    item = real_photo(
        session,
        app.state.storage,
        campaign,
        author_name="Ольга",
        city="Алматы",
        text="Помним бабушку.",
        language="ru",
        posted_at=T0,
        alt="Женщина держит лист с надписью «Мы помним».",
    )
    item.source_id = source.id
    item.url = "https://mastodon.example/@olga/1"
    session.add(item)
    session.commit()

    body = items_of(client, campaign.slug)
    assert set(json_keys(body)) <= PUBLIC_ITEM_KEYS
    (out,) = body["items"]
    assert out["id"] == item.public_id and out["id"] != str(item.id)
    assert out["url"] == f"http://testserver/c/{campaign.slug}/p/{item.public_id}"
    assert (out["caption"], out["author"], out["city"], out["language"]) == (
        "Помним бабушку.",
        "Ольга",
        "Алматы",
        "ru",
    )
    assert datetime.fromisoformat(out["created"]) == T0
    assert out["source"] == {"kind": "mastodon", "url": "https://mastodon.example/@olga/1"}
    (image,) = out["images"]
    assert image["alt"].startswith("Женщина")
    assert image["color"].startswith("#")
    for style in ("slide", "thumb"):
        assert image[style]["url"].startswith("http://testserver/media/")
        fetched = client.get(image[style]["url"])
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
    assert (image["slide"]["width"], image["slide"]["height"]) == (800, 600)
    assert max(image["thumb"]["width"], image["thumb"]["height"]) <= 480
    assert image["thumb"]["width"] * 600 == image["thumb"]["height"] * 800
    assert body["next"] is None and body["next_cursor"] is None


def test_upload_source_has_no_link(client: TestClient, session: Session, app: Any) -> None:
    campaign = make_campaign(session)
    real_photo(session, app.state.storage, campaign)
    (out,) = items_of(client, campaign.slug)["items"]
    assert out["source"] == {"kind": "upload", "url": None}


def test_cursor_pagination_follows_next(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    made = [approved(session, campaign, posted_at=T0 + timedelta(minutes=i)) for i in range(12)]
    seen: list[str] = []
    body = items_of(client, campaign.slug, limit=5, city="")
    seen += [i["id"] for i in body["items"]]
    while body["next"]:
        assert body["next"].startswith(f"http://testserver/api/v1/campaigns/{campaign.slug}/")
        approved(session, campaign, posted_at=T0 + timedelta(days=1))  # arrives meanwhile
        response = client.get(body["next"])
        assert response.status_code == 200
        body = response.json()
        seen += [i["id"] for i in body["items"]]
    assert seen == [s.public_id for s in reversed(made)]


def test_filters_in_the_api(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    a = approved(session, campaign, city="Астана", language="kk", posted_at=T0)
    approved(session, campaign, city="Алматы", language="ru", posted_at=T0)
    assert [i["id"] for i in items_of(client, campaign.slug, city="астана")["items"]] == [
        a.public_id
    ]
    assert [i["id"] for i in items_of(client, campaign.slug, language="kk")["items"]] == [
        a.public_id
    ]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": "garbage"}, {"language": "r!"}],
)
def test_bad_parameters_are_422_with_the_error_shape(
    client: TestClient, session: Session, params: dict[str, Any]
) -> None:
    campaign = make_campaign(session)
    response = client.get(f"/api/v1/campaigns/{campaign.slug}/items", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]


def test_unknown_campaign_is_404_json(client: TestClient) -> None:
    response = client.get("/api/v1/campaigns/nope/items")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_etag_and_304_change_with_approvals_and_takedowns(
    client: TestClient, session: Session
) -> None:
    campaign = make_campaign(session)
    first = approved(session, campaign, posted_at=T0)
    url = f"/api/v1/campaigns/{campaign.slug}/items"
    response = client.get(url)
    etag = response.headers["etag"]
    assert response.headers["cache-control"] == "no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["access-control-allow-origin"] == "*"
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304

    pending = make_submission(session, campaign, posted_at=T0 + timedelta(hours=1))
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304  # pending: no change
    transition(
        session=session,
        submission_id=pending.id,  # type: ignore[arg-type]
        to=SubmissionStatus.approved,
        actor_label="test",
    )
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    transition(
        session=session,
        submission_id=first.id,  # type: ignore[arg-type]
        to=SubmissionStatus.removed,
        actor_label="test",
    )
    after = client.get(url, headers={"If-None-Match": changed.headers["etag"]})
    assert after.status_code == 200
    assert [i["id"] for i in after.json()["items"]] == [pending.public_id]

    listing = client.get("/api/v1/campaigns")
    assert (
        client.get(
            "/api/v1/campaigns", headers={"If-None-Match": listing.headers["etag"]}
        ).status_code
        == 304
    )


def test_cors_only_on_the_read_endpoints(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    approved(session, campaign)
    origin = {"Origin": "https://partner.example"}
    for path in (
        "/api/v1/campaigns",
        f"/api/v1/campaigns/{campaign.slug}/items",
        f"/c/{campaign.slug}/feed.xml",
    ):
        assert client.get(path, headers=origin).headers["access-control-allow-origin"] == "*"
        preflight = client.options(
            path,
            headers={
                **origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "if-none-match",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert "POST" not in preflight.headers["access-control-allow-methods"]
        assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()
    for path in (
        f"/c/{campaign.slug}/gallery",
        f"/c/{campaign.slug}/embed",
        "/healthz",
        "/api/v1/openapi.json",
    ):
        assert "access-control-allow-origin" not in client.get(path, headers=origin).headers


def test_openapi_documents_the_read_api(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    items = schema["paths"]["/api/v1/campaigns/{slug}/items"]["get"]
    assert items["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ItemPage"
    )
    assert items["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReadApiError"
    )
    names = {p["name"] for p in items["parameters"]}
    assert names == {"slug", "before", "limit", "city", "language"}
    components = schema["components"]["schemas"]
    assert {"Item", "ItemImage", "ImageStyle", "ItemSource", "CampaignList"} <= set(components)
    assert set(components["Item"]["properties"]) == {
        "id",
        "url",
        "caption",
        "author",
        "city",
        "language",
        "created",
        "source",
        "images",
    }
    feed = schema["paths"]["/c/{slug}/feed.xml"]["get"]
    assert "application/atom+xml" in feed["responses"]["200"]["content"]
