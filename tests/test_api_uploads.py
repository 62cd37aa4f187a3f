"""POST /api/v1/campaigns/{slug}/submissions: the kiosk API, its JSON errors and its schema."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from aggregator.models import MediaAsset, Submission, SubmissionStatus, utcnow
from tests.factories import make_campaign
from tests.media_samples import png
from tests.upload_support import FileSpec, app_client, counts, media_files, photo_jpeg


def post(
    client: TestClient,
    slug: str,
    files: list[FileSpec],
    data: dict[str, Any] | None = None,
    **headers: str,
) -> Any:
    fields = {"consent": "projection,web", **(data or {})}
    return client.post(
        f"/api/v1/campaigns/{slug}/submissions",
        data=fields,
        files=[("photos", spec) for spec in files],
        headers=headers,
    )


def test_a_kiosk_submission_is_created_pending_with_a_receipt(
    client: TestClient, session: Session
) -> None:
    campaign = make_campaign(session)
    response = post(
        client,
        campaign.slug,
        [("a.jpg", photo_jpeg(1), "image/jpeg"), ("b.jpg", photo_jpeg(2), "image/jpeg")],
        {"name": "Kiosk guest", "city": "Astana", "language": "kk", "alt": ["first", "second"]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["photos"] == 2
    assert body["receipt_url"].startswith("http://testserver/r/")
    session.rollback()
    submission = session.exec(select(Submission)).one()
    assert submission.public_id == body["id"]
    assert submission.consent == ["projection", "web"] and submission.language == "kk"
    assert submission.status == SubmissionStatus.pending
    alts = [
        a.alt_text for a in session.exec(select(MediaAsset).order_by(MediaAsset.position)).all()
    ]  # type: ignore[arg-type]
    assert alts == ["first", "second"]
    receipt = client.get(body["receipt_url"].removeprefix("http://testserver"))
    assert receipt.status_code == 200


def test_errors_are_json_with_code_message_and_the_refused_files(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    closed = make_campaign(session, upload_closes_at=utcnow() - timedelta(hours=1))
    with app_client(tmp_path, database_url, upload_max_bytes=200_000) as (client, settings):
        good = ("good.jpg", photo_jpeg(3), "image/jpeg")
        cases: list[tuple[Any, int, str]] = [
            (post(client, campaign.slug, [good], {"consent": "web"}), 422, "consent_required"),
            (
                post(client, campaign.slug, [good, ("x.svg", b"<svg/>", "image/svg+xml")]),
                415,
                "unsupported_format",
            ),
            (
                post(
                    client,
                    campaign.slug,
                    [("big.jpg", b"\xff\xd8\xff" + bytes(200_000), "image/jpeg")],
                ),
                413,
                "too_large",
            ),
            (
                post(
                    client, campaign.slug, [good, ("bomb.png", png(100_000, 100_000), "image/png")]
                ),
                413,
                "too_many_pixels",
            ),
            (post(client, closed.slug, [good]), 403, "uploads_closed"),
            (post(client, "no-such", [good]), 404, "not_found"),
            (
                client.post(f"/api/v1/campaigns/{campaign.slug}/submissions", json={}),
                415,
                "unsupported_body",
            ),
        ]
        for response, status, code in cases:
            assert response.status_code == status, (code, response.text)
            assert response.headers["content-type"] == "application/json"
            error = response.json()["error"]
            assert error["code"] == code and error["message"]
        refused = cases[1][0].json()["error"]["files"]
        assert refused == [
            {
                "index": 1,
                "filename": "x.svg",
                "code": "unsupported_format",
                "message": refused[0]["message"],
            }
        ]
        assert counts(session) == (0, 0, 0) and media_files(settings) == []


def test_messages_follow_accept_language(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    response = post(
        client,
        campaign.slug,
        [("t.jpg", b"hello", "image/jpeg")],
        **{"Accept-Language": "ru"},
    )
    assert response.status_code == 415
    assert "не фотография" in response.json()["error"]["files"][0]["message"]


def test_the_api_shares_the_upload_rate_limit(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url, upload_rate_limit=1) as (client, _settings):
        first = post(client, campaign.slug, [("a.jpg", photo_jpeg(1), "image/jpeg")])
        second = post(client, campaign.slug, [("b.jpg", photo_jpeg(2), "image/jpeg")])
    assert (first.status_code, second.status_code) == (201, 429)
    assert int(second.headers["Retry-After"]) >= 1
    assert second.json()["error"]["code"] == "rate_limited"


def test_the_endpoint_is_documented_in_openapi(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/campaigns/{slug}/submissions"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["photos"]["items"]["format"] == "binary"
    assert set(form["required"]) == {"photos", "consent"}
    assert {"201", "403", "404", "413", "415", "422", "429"} <= set(operation["responses"])
    error_ref = operation["responses"]["413"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("/ErrorBody")
