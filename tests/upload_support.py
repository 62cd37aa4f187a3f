"""Helpers shared by the upload, receipt and API tests: an app with chosen settings, a client
that has fetched the page (so it holds a CSRF cookie), form posts, and what was stored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from aggregator.app import create_app
from aggregator.config import Settings
from aggregator.models import MediaAsset, StagedPhoto, Submission
from tests.conftest import make_settings
from tests.media_samples import photo

FileSpec = tuple[str, bytes, str]


def photo_jpeg(seed: int = 0, w: int = 400, h: int = 300) -> bytes:
    """A distinct small JPEG per seed (so near-duplicate flags do not interfere)."""
    import io

    buffer = io.BytesIO()
    photo(w, h, seed=seed).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@contextmanager
def app_client(
    tmp_path: Path, database_url: str, **overrides: Any
) -> Iterator[tuple[TestClient, Settings]]:
    """A client for an app built with ``overrides`` applied to the test settings."""
    settings = make_settings(tmp_path, database_url, **overrides)
    app = create_app(settings, start_scheduler=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield client, settings


def open_page(client: TestClient, slug: str, lang: str | None = None) -> str:
    """GET the campaign page (sets the CSRF cookie); returns the CSRF token."""
    params = {"lang": lang} if lang else None
    response = client.get(f"/c/{slug}", params=params)
    assert response.status_code == 200, response.text
    return str(client.cookies.get("csrftoken"))


def submit(
    client: TestClient,
    slug: str,
    *,
    files: Sequence[FileSpec] = (),
    data: dict[str, Any] | None = None,
    csrf: bool = True,
    consent: Sequence[str] = ("projection", "web"),
    headers: dict[str, str] | None = None,
) -> Any:
    """POST the upload form the way a browser without JavaScript does."""
    fields: dict[str, Any] = {"consent": list(consent), **(data or {})}
    if csrf:
        fields = {"csrf_token": client.cookies.get("csrftoken"), **fields}
    # A browser sends an empty file part when no file was chosen; the form stays multipart.
    parts = [("photos", spec) for spec in files] or [
        ("photos", ("", b"", "application/octet-stream"))
    ]
    return client.post(
        f"/c/{slug}/submit",
        data=fields,
        files=parts,
        headers=headers,
        follow_redirects=False,
    )


def stage(client: TestClient, slug: str, spec: FileSpec, **headers: str) -> Any:
    """POST one photo the way upload.js does."""
    sent = {"X-CSRF-Token": str(client.cookies.get("csrftoken")), **headers}
    return client.post(f"/c/{slug}/photos", files=[("photo", spec)], headers=sent)


def counts(session: Session) -> tuple[int, int, int]:
    """(submissions, media assets, staged photos) in the database."""
    session.rollback()  # end the session's read snapshot: the app wrote after it began
    return tuple(  # type: ignore[return-value]
        session.exec(select(func.count()).select_from(model)).one()
        for model in (Submission, MediaAsset, StagedPhoto)
    )


def media_files(settings: Settings) -> list[Path]:
    """Every file in the media folder (derivatives and temp leftovers)."""
    root = settings.effective_media_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
