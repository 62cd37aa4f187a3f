"""The QR poster: A4 PDF and PNG, a QR code that encodes the upload page, texts per language."""

from __future__ import annotations

import io
import re

import segno
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session

from aggregator.models import Campaign
from aggregator.services.poster import poster_text, qr_image, render_poster
from tests.factories import make_campaign

BASE = "https://remember.example.org"


def read_qr(image: Image.Image) -> list[list[bool]]:
    """Sample the QR modules of the only pure-black area in an image (our text is not black)."""
    grey = image.convert("RGB")
    box = grey.convert("L").point(lambda v: 255 if v == 0 else 0).getbbox()
    assert box is not None
    left, top, right, bottom = box
    return _sample(grey, left, top, right - left, bottom - top)


def _sample(image: Image.Image, left: int, top: int, width: int, height: int) -> list[list[bool]]:
    for version in range(1, 41):
        n = 17 + 4 * version
        module = width / n
        if abs(module - round(module)) < 0.01 and abs(height - width) <= 1:
            return [
                [
                    image.getpixel((int(left + (x + 0.5) * module), int(top + (y + 0.5) * module)))
                    == (0, 0, 0)
                    for x in range(n)
                ]
                for y in range(n)
            ]
    raise AssertionError("no QR grid found")


def expected_matrix(url: str) -> list[list[bool]]:
    return [[bool(v) for v in row] for row in segno.make(url, error="m", micro=False).matrix]


def test_the_qr_image_encodes_the_address() -> None:
    url = f"{BASE}/c/day-of-remembrance"
    assert read_qr(qr_image(url, 400)) == expected_matrix(url)


def test_the_poster_carries_a_readable_qr_code_to_the_upload_page() -> None:
    campaign = Campaign(slug="alzhir", name="ALZHIR", languages=["kk", "ru", "en", "he"])
    image = render_poster(campaign, BASE, dpi=150)
    assert image.size == (1240, 1753) or image.size == (1240, 1754)
    assert read_qr(image) == expected_matrix(f"{BASE}/c/alzhir")


def test_poster_texts_come_in_every_campaign_language() -> None:
    campaign = Campaign(
        slug="wr",
        name="We Remember 2027",
        sign_text="We Remember",
        languages=["en", "ru", "kk", "he"],
        translations={"kk": {"sign_text": "Біз еске аламыз!"}},
    )
    text = poster_text(campaign, BASE + "/")
    assert [sign for _lang, sign in text.signs] == [
        "We Remember",
        "Мы помним",
        "Біз еске аламыз!",
        "אנחנו זוכרים",
    ]
    scans = dict(text.scan)
    assert scans["ru"].startswith("Наведите камеру") and "телефон" in scans["kk"]
    assert text.short_url == "remember.example.org/c/wr" and text.url == f"{BASE}/c/wr"


def test_many_languages_and_a_long_name_still_fit_one_page() -> None:
    campaign = Campaign(slug="long", name="Remembrance " * 30, languages=["en", "ru", "kk", "he"])
    image = render_poster(campaign, BASE, dpi=100)
    # The bottom margin stays white: everything was shrunk to fit.
    strip = image.crop((0, image.height - 30, image.width, image.height))
    assert strip.getextrema() == ((255, 255), (255, 255), (255, 255))


def test_poster_routes_serve_pdf_png_svg_and_a_page(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session, languages=["ru", "kk"])
    page = client.get(f"/c/{campaign.slug}/poster?lang=ru")
    assert page.status_code == 200 and "Плакат с QR-кодом" in page.text
    assert f'href="/c/{campaign.slug}/poster.pdf"' in page.text
    pdf = client.get(f"/c/{campaign.slug}/poster.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]
    media_box = re.search(rb"/MediaBox \[ ?0 0 ([\d.]+) ([\d.]+) ?\]", pdf.content)
    assert media_box is not None
    width_pt, height_pt = (float(v) for v in media_box.groups())
    assert abs(width_pt - 595) < 2 and abs(height_pt - 842) < 2  # A4 in points
    png = client.get(f"/c/{campaign.slug}/poster.png")
    assert png.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(png.content)) as image:
        assert image.format == "PNG" and image.width == 1240
        assert read_qr(image) == expected_matrix(f"http://testserver/c/{campaign.slug}")
    svg = client.get(f"/c/{campaign.slug}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content and b"<script" not in svg.content
    assert client.get("/c/nothing/poster.pdf").status_code == 404
