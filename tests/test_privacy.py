"""Privacy of everything public (gallery, photo pages, embed, read API, feed): canaries planted
in every private place never come out, JSON keys are allowlisted, and what was not approved
for the web stays off it (security.md S3, E1, E2)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from aggregator.models import AuditEntry, Role, SubmissionStatus
from aggregator.services.moderation import transition
from aggregator.services.users import hash_token
from tests.factories import make_campaign, make_source, make_user
from tests.gallery_support import PUBLIC_CAMPAIGN_KEYS, PUBLIC_ITEM_KEYS, json_keys, real_photo

EMAIL = "canary.person@example.org"
MODERATOR_EMAIL = "canary.moderator@example.org"
IP = "203.0.113.77"
FILENAME = "IMG_CANARY_4711.HEIC"
BOT_TOKEN = "CANARY-BOT-TOKEN-123456:ABC"
CANARIES = [
    EMAIL,
    MODERATOR_EMAIL,
    IP,
    FILENAME,
    BOT_TOKEN,
    "CANARY-HTML",
    "CANARY-AUDIT",
    "CANARY-EXTERNAL-ID",
    "CANARY-AUTHOR-URL",
    "CANARY-HANDLE",
    "CanaryCam",
    "CANARY-PENDING",
    "CANARY-REJECTED",
    "CANARY-REMOVED",
    "CANARY-WITHDRAWN",
    "CANARY-PROJECTION-ONLY",
    "CANARY-ARCHIVE-ONLY",
]


def exif_jpeg() -> bytes:
    """A JPEG carrying a camera make and GPS position (security.md U8 recipe)."""
    exif = Image.Exif()
    exif[0x010F] = "CanaryCam"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 0.0)}
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 80, 70)).save(
        buffer, "JPEG", exif=exif, comment=b"CanaryCam comment"
    )
    return buffer.getvalue()


@pytest.fixture
def planted(session: Session, app: Any) -> dict[str, Any]:
    """A campaign with one public item full of private data, and one item in every other state."""
    storage = app.state.storage
    campaign = make_campaign(session, slug="canaries")
    moderator = make_user(session, Role.moderator, email=MODERATOR_EMAIL)
    source = make_source(
        session, campaign, kind="telegram", config={"token": BOT_TOKEN, "chat": "x"}
    )
    public = real_photo(
        session,
        storage,
        campaign,
        data=exif_jpeg(),
        author_name="Public Person",
        author_handle="@CANARY-HANDLE",
        author_url="https://example.org/CANARY-AUTHOR-URL",
        text="Visible caption",
        html="<p>CANARY-HTML</p>",
        external_id="CANARY-EXTERNAL-ID",
        extra={"email": EMAIL, "ip": IP, "filename": FILENAME, "exif": {"Make": "CanaryCam"}},
    )
    public.source_id = source.id
    public.receipt_token_hash = hash_token("receipt-canary")
    public.claimed_by_id = moderator.id
    session.add(public)
    session.add(
        AuditEntry(
            submission_id=public.id,
            actor_id=moderator.id,
            action="note",
            reason="CANARY-AUDIT",
        )
    )
    session.commit()

    def hidden(label: str, **kw: Any) -> Any:
        return real_photo(
            session,
            storage,
            campaign,
            author_name=label,
            city=label,
            text=label,
            alt=label,
            **kw,
        )

    others = {
        "pending": hidden("CANARY-PENDING", approve=False),
        "rejected": hidden("CANARY-REJECTED", approve=False),
        "removed": hidden("CANARY-REMOVED"),
        "withdrawn": hidden("CANARY-WITHDRAWN"),
        "projection": hidden("CANARY-PROJECTION-ONLY", consent=["projection"]),
        "archive": hidden("CANARY-ARCHIVE-ONLY", consent=["projection", "archive"]),
    }
    for name, to in (
        ("rejected", SubmissionStatus.rejected),
        ("removed", SubmissionStatus.removed),
        ("withdrawn", SubmissionStatus.withdrawn),
    ):
        transition(
            session=session,
            submission_id=others[name].id,
            to=to,
            actor_id=moderator.id,
            reason="CANARY-AUDIT",
        )
    return {"campaign": campaign, "public": public, "others": others}


def public_responses(client: TestClient, planted: dict[str, Any]) -> list[Any]:
    """Every public response the gallery, API and feed give for the planted campaign."""
    slug = planted["campaign"].slug
    public = planted["public"]
    urls = [
        f"/c/{slug}/gallery",
        f"/c/{slug}/gallery?city=Almaty",
        f"/c/{slug}/gallery?language=en",
        f"/c/{slug}/p/{public.public_id}",
        f"/c/{slug}/embed",
        f"/c/{slug}/feed.xml",
        "/api/v1/campaigns",
        f"/api/v1/campaigns/{slug}/items",
        f"/api/v1/campaigns/{slug}/items?limit=1",
    ]
    urls += [f"/c/{slug}/p/{item.public_id}" for item in planted["others"].values()]
    responses = [client.get(url) for url in urls]
    items = client.get(f"/api/v1/campaigns/{slug}/items").json()["items"]
    for image in items[0]["images"]:
        responses += [client.get(image["slide"]["url"]), client.get(image["thumb"]["url"])]
    return responses


def test_no_canary_leaves_through_any_public_response(
    client: TestClient, planted: dict[str, Any]
) -> None:
    responses = public_responses(client, planted)
    assert all(r.status_code in (200, 404, 410) for r in responses)
    assert sum(r.status_code == 200 for r in responses) >= 11
    for response in responses:
        blob = response.content + str(response.headers).encode()
        for canary in CANARIES:
            assert canary.encode() not in blob, (canary, response.url)
        assert b"receipt-canary" not in blob
        assert hash_token("receipt-canary").encode() not in blob


def test_image_bytes_carry_no_metadata(client: TestClient, planted: dict[str, Any]) -> None:
    slug = planted["campaign"].slug
    (item,) = client.get(f"/api/v1/campaigns/{slug}/items").json()["items"]
    for style in ("slide", "thumb"):
        data = client.get(item["images"][0][style]["url"]).content
        assert b"Exif" not in data and b"CanaryCam" not in data
        assert not Image.open(io.BytesIO(data)).getexif()


def test_only_the_web_consented_approved_item_is_listed(
    client: TestClient, planted: dict[str, Any]
) -> None:
    slug = planted["campaign"].slug
    body = client.get(f"/api/v1/campaigns/{slug}/items").json()
    assert [i["id"] for i in body["items"]] == [planted["public"].public_id]
    assert set(json_keys(body)) <= PUBLIC_ITEM_KEYS
    assert set(json_keys(client.get("/api/v1/campaigns").json())) <= PUBLIC_CAMPAIGN_KEYS
    statuses = {
        name: client.get(f"/c/{slug}/p/{item.public_id}").status_code
        for name, item in planted["others"].items()
    }
    assert statuses == {
        "pending": 404,
        "rejected": 404,
        "removed": 410,
        "withdrawn": 410,
        "projection": 404,
        "archive": 404,
    }


def test_api_item_keys_are_exactly_the_allowlist(
    client: TestClient, planted: dict[str, Any]
) -> None:
    slug = planted["campaign"].slug
    (item,) = client.get(f"/api/v1/campaigns/{slug}/items").json()["items"]
    assert set(item) == {
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
    assert set(item["source"]) == {"kind", "url"}
    assert set(item["images"][0]) == {"alt", "color", "slide", "thumb"}
    assert set(item["images"][0]["slide"]) == {"url", "width", "height"}
    assert item["source"] == {"kind": "telegram", "url": None}
