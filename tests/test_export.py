"""Exports: bundle, PDF, PPTX, poster and archive hold exactly the consented, approved photos."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from bidi import get_display
from PIL import Image
from sqlmodel import Session

from aggregator.config import Settings
from aggregator.models import Event
from aggregator.services.export_poster import grid
from aggregator.services.exports import export_event
from tests.factories import make_campaign, make_event
from tests.slideshow_support import photo, take_down

HEBREW = "אנחנו זוכרים"
KAZAKH = "Біз еске аламыз — Қарағанды, Өскемен"
RUSSIAN = "Мы помним"


@pytest.fixture
def show(session: Session, app: Any) -> dict[str, Any]:
    """An event with three projectable photos (ru, kk, he captions) and three that are not."""
    storage = app.state.storage
    campaign = make_campaign(session, name="Мы помним 2027")
    event, link = make_event(session, campaign, name="Вечер памяти")
    items = [
        photo(
            session,
            storage,
            campaign,
            author_name="Анна",
            city="Алматы",
            text=RUSSIAN,
            language="ru",
        ),
        photo(
            session,
            storage,
            campaign,
            author_name="Әлия",
            city="Қарағанды",
            text=KAZAKH,
            language="kk",
            size=(1200, 900),
        ),
        photo(
            session, storage, campaign, author_name="Ноам", city="חיפה", text=HEBREW, language="he"
        ),
    ]
    photo(session, storage, campaign, approve=False)
    photo(session, storage, campaign, consent=("web",))
    archive_only = photo(session, storage, campaign, consent=("archive",))
    return {
        "event": event,
        "link": link,
        "items": items,
        "archive_only": archive_only,
        "campaign": campaign,
    }


def _export(session: Session, app: Any, event: Event, fmt: str, path: Path) -> Path:
    result = export_event(
        session=session,
        storage=app.state.storage,
        settings=app.state.settings,
        event=event,
        fmt=fmt,
        out_path=path,
    )
    assert result.path == path and path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".part-")]
    return path


def _set(session: Session, event: Event, **values: Any) -> None:
    event.settings = {**event.settings, **values}
    session.add(event)
    session.commit()


def test_bundle_has_the_slideshow_and_only_projectable_photos(
    session: Session, app: Any, show: dict[str, Any], tmp_path: Path
) -> None:
    path = _export(session, app, show["event"], "bundle", tmp_path / "show.zip")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = names[0].split("/")[0]
        assert all(n.startswith(root + "/") for n in names)
        index = archive.read(f"{root}/index.html").decode()
        images = [n for n in names if re.search(r"/images/[^/]+\.jpg$", n)]
        assert len(images) == 3
        for name in images:
            with Image.open(io.BytesIO(archive.read(name))) as image:
                assert image.width <= 1920 and image.height <= 1080
        feed_js = archive.read(f"{root}/assets/feed.js").decode()
        js = archive.read(f"{root}/assets/slideshow.js").decode()
    # Same slide template as the live page, relative addresses only.
    assert index.count('class="slide slide--photo"') == 3
    assert 'src="assets/slideshow.js"' in index and 'href="assets/slideshow.css"' in index
    assert not re.search(r'(src|href)="/', index)
    doc = json.loads(feed_js.removeprefix("window.WR_FEED = ").rstrip(";\n"))
    assert {i["id"] for i in doc["items"]} == {s.public_id for s in show["items"]}
    assert all(i["image"].startswith("images/") for i in doc["items"])
    assert "window.WR_FEED" in js
    # slideshow.js needs display_link.js (wake lock, idle cursor), loaded first and zipped too.
    assert f"{root}/assets/display_link.js" in names
    assert index.index('src="assets/display_link.js"') < index.index('src="assets/slideshow.js"')


def test_takedown_disappears_from_the_next_export(
    session: Session, app: Any, show: dict[str, Any], tmp_path: Path
) -> None:
    first = _export(session, app, show["event"], "bundle", tmp_path / "a.zip")
    take_down(session, show["items"][0])
    second = _export(session, app, show["event"], "bundle", tmp_path / "b.zip")

    def count(path: Path) -> int:
        names = zipfile.ZipFile(path).namelist()
        return len([n for n in names if "/images/" in n and n.endswith(".jpg")])

    assert (count(first), count(second)) == (3, 2)
    removed_id = show["items"][0].public_id
    assert not any(removed_id in n for n in zipfile.ZipFile(second).namelist())


def test_pdf_has_one_page_per_slide_and_real_text(
    session: Session, app: Any, show: dict[str, Any], tmp_path: Path
) -> None:
    from pypdf import PdfReader

    _set(
        session,
        show["event"],
        intro={"title": "Мы помним", "text": "27 января"},
        closing={"title": "Біз еске аламыз", "text": ""},
    )
    path = _export(session, app, show["event"], "pdf", tmp_path / "show.pdf")
    reader = PdfReader(path)
    assert len(reader.pages) == 3 + 1 + 1  # three photos, intro, closing
    width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert width > height  # landscape
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Анна · Алматы" in text and RUSSIAN in text
    assert "Қарағанды" in text and "Өскемен" in text  # Kazakh letters survive
    # Hebrew is laid out right-to-left: stored in visual order, every letter present.
    assert HEBREW in text or str(get_display(HEBREW)) in text
    assert "27 января" in text


def test_pptx_has_one_slide_per_photo_with_notes(
    session: Session, app: Any, show: dict[str, Any], tmp_path: Path
) -> None:
    from pptx import Presentation

    _set(session, show["event"], intro={"title": "We Remember", "text": ""}, qr_every=2)
    path = _export(session, app, show["event"], "pptx", tmp_path / "show.pptx")
    deck = Presentation(str(path))
    slides = list(deck.slides)
    assert len(slides) == 3 + 1 + 1  # photos, intro, one QR slide after the second photo
    pictures = [s for s in slides if any(sh.shape_type == 13 for sh in s.shapes)]
    assert len(pictures) == 3 + 1  # the QR code is a picture too
    texts = ["\n".join(sh.text_frame.text for sh in s.shapes if sh.has_text_frame) for s in slides]
    notes = [s.notes_slide.notes_text_frame.text for s in slides]
    assert any(KAZAKH in t for t in texts)
    assert any(HEBREW in n for n in notes)
    assert any(RUSSIAN in n and "Анна" in n for n in notes)
    hebrew_xml = next(s for s, t in zip(slides, texts, strict=True) if HEBREW in t)
    assert 'rtl="1"' in hebrew_xml.shapes._spTree.xml


def test_poster_pdf_and_image(
    session: Session, app: Any, show: dict[str, Any], tmp_path: Path
) -> None:
    from pypdf import PdfReader

    pdf = _export(session, app, show["event"], "poster", tmp_path / "poster.pdf")
    assert len(PdfReader(pdf).pages) == 1
    jpg = _export(session, app, show["event"], "poster", tmp_path / "poster.jpg")
    with Image.open(jpg) as image:
        assert image.size == (6000, 4243) and image.format == "JPEG"
    assert grid(3, 1000, 500) == (3, 1, 329)
    cols, rows, side = grid(1000, 5760, 3443)
    assert cols * rows >= 1000 and side > 100


def test_archive_is_a_valid_bag_with_metadata_and_history(
    session: Session, app: Any, show: dict[str, Any], tmp_path: Path
) -> None:
    path = _export(session, app, show["event"], "archive", tmp_path / "archive.zip")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = names[0].split("/")[0]
        files = {n.removeprefix(root + "/"): archive.read(n) for n in names}
    assert files["bagit.txt"].startswith(b"BagIt-Version: 1.0")
    manifest = [line.split("  ", 1) for line in files["manifest-sha256.txt"].decode().splitlines()]
    payload = {n for n in files if n.startswith("data/")}
    assert {name for _h, name in manifest} == payload
    for digest, name in manifest:
        assert hashlib.sha256(files[name]).hexdigest() == digest
    for line in files["tagmanifest-sha256.txt"].decode().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(files[name]).hexdigest() == digest
    oxum = re.search(r"Payload-Oxum: (\d+)\.(\d+)", files["bag-info.txt"].decode())
    assert oxum and int(oxum[2]) == len(payload)
    assert int(oxum[1]) == sum(len(files[n]) for n in payload)
    # Archive consent decides: the archive-only item is in, the web-only one is not.
    metadata = [json.loads(files[n]) for n in payload if n.startswith("data/metadata/")]
    ids = {m["id"] for m in metadata}
    assert show["archive_only"].public_id in ids and len(ids) == 4
    record = next(m for m in metadata if m["id"] == show["items"][1].public_id)
    assert record["author"]["name"] == "Әлия" and record["language"] == "kk"
    assert record["consent"] == ["projection", "web", "archive"]
    assert [h["to"] for h in record["moderation"]][-1] == "approved"
    assert record["images"][0]["file"].startswith("images/")


def test_unknown_format_and_bad_output(session: Session, app: Any, tmp_path: Path) -> None:
    from aggregator.errors import InvalidInput

    campaign = make_campaign(session)
    event, _link = make_event(session, campaign)
    settings: Settings = app.state.settings
    with pytest.raises(InvalidInput):
        export_event(
            session=session,
            storage=app.state.storage,
            settings=settings,
            event=event,
            fmt="gif",
            out_path=tmp_path / "x",
        )
    with pytest.raises(InvalidInput):
        export_event(
            session=session,
            storage=app.state.storage,
            settings=settings,
            event=event,
            fmt="pdf",
            out_path=tmp_path / "missing" / "x.pdf",
        )
    # An event with nothing approved still exports (an empty programme is not an error).
    _export(session, app, event, "pdf", tmp_path / "empty.pdf")


def test_export_jobs_record_progress_and_keep_two_files(
    session: Session, app: Any, show: dict[str, Any]
) -> None:
    from sqlmodel import select

    from aggregator.models import ExportJob
    from aggregator.services.exports import job_path, run_export_job

    state = app.state
    ids = []
    try:
        for _ in range(3):
            job = ExportJob(event_id=show["event"].id, format="pptx")
            session.add(job)
            session.commit()
            run_export_job(
                engine=state.engine, storage=state.storage, settings=state.settings, job_id=job.id
            )
            ids.append(job.id)
    finally:
        state.engine.dispose()  # no TestClient here, so no lifespan closes its pool
    session.expire_all()
    jobs = {j.id: j for j in session.exec(select(ExportJob)).all()}
    assert all(jobs[i].status == "done" and jobs[i].progress == 1.0 for i in ids)
    assert jobs[ids[0]].storage_key is None  # the oldest file was removed
    assert all(job_path(state.settings, jobs[i]) is not None for i in ids[1:])


def test_a_failed_export_job_says_why(session: Session, app: Any, show: dict[str, Any]) -> None:
    from sqlmodel import select

    from aggregator.models import ExportJob, MediaAsset
    from aggregator.services.exports import run_export_job

    asset = session.exec(
        select(MediaAsset).where(MediaAsset.submission_id == show["items"][0].id)
    ).one()
    app.state.storage.delete(asset.keys["slide"])  # a file lost on disk
    job = ExportJob(event_id=show["event"].id, format="bundle")
    session.add(job)
    session.commit()
    state = app.state
    try:
        run_export_job(
            engine=state.engine, storage=state.storage, settings=state.settings, job_id=job.id
        )
    finally:
        state.engine.dispose()
    session.expire_all()
    failed = session.get(ExportJob, job.id)
    assert failed is not None and failed.status == "failed" and failed.error
    assert failed.storage_key is None and failed.finished_at is not None
