"""Orientation (all 8 EXIF values, every format) and metadata stripping checked on raw bytes."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from aggregator.media import ProcessedImage, process_image
from tests import media_samples as samples
from tests.media_samples import close, decode, mean


def jpeg_markers(data: bytes) -> list[int]:
    """Marker bytes of every segment before the scan data."""
    markers, pos = [], 2
    while pos < len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return markers


def assert_clean_jpeg(data: bytes) -> None:
    """No EXIF, XMP, ICC or comment: checked on raw bytes and with Pillow."""
    assert data.startswith(b"\xff\xd8\xff")
    lowered = data.lower()
    # Only needles long enough never to occur by chance in compressed image data.
    for needle in (b"canary", b"exif\0\0", b"ns.adobe.com/xap", b"icc_profile", b"<script"):
        assert needle not in lowered, needle
    assert b"\xff\xfe" not in data  # COM marker (cannot occur inside entropy-coded data)
    markers = jpeg_markers(data)
    assert not {0xE1, 0xE2, 0xED, 0xFE} & set(markers), markers  # APP1, APP2, APP13, COM
    im = decode(data)
    assert im.format == "JPEG" and im.mode == "RGB"
    assert not im.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(im.info)


# --- orientation --------------------------------------------------------------------------------


def assert_upright(result: ProcessedImage, w: int = 64, h: int = 32) -> None:
    out = decode(result.slide.data)
    assert out.size == (w, h)
    hw, hh = w // 2, h // 2
    assert close(mean(out, (2, 2, hw - 2, hh - 2)), samples.RED), "top-left"
    assert close(mean(out, (hw + 2, 2, w - 2, hh - 2)), samples.GREEN), "top-right"
    assert close(mean(out, (2, hh + 2, hw - 2, h - 2)), samples.BLUE), "bottom-left"
    assert close(mean(out, (hw + 2, hh + 2, w - 2, h - 2)), samples.WHITE), "bottom-right"
    assert not out.getexif()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_jpeg_orientations(orientation: int) -> None:
    data = samples.oriented(orientation)
    stored = decode(data).size
    assert stored == ((32, 64) if orientation >= 5 else (64, 32))
    assert_upright(process_image(data))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF", "HEIF"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_in_other_formats(fmt: str, orientation: int) -> None:
    assert_upright(process_image(samples.oriented(orientation, fmt)))


def test_orientation_applied_to_big_jpeg_with_draft() -> None:
    data = samples.oriented(6, w=3200, h=1600)
    result = process_image(data)
    assert_upright(result, 1920, 960)


def test_gps_exif_canaries_are_gone_and_orientation_applied() -> None:
    data = samples.gps_exif_jpeg()
    assert b"CANARY" in data and b"Canary" in data
    result = process_image(data)
    for derivative in result.derivatives.values():
        assert_clean_jpeg(derivative.data)
    assert (result.width, result.height) == (32, 64)  # Orientation 6 rotated the 64x32 image


@pytest.mark.parametrize(
    "fmt_kw",
    [
        ("PNG", {"pnginfo": "text"}),
        ("PNG", {"exif": True}),
        ("WEBP", {"exif": True, "xmp": True}),
        ("AVIF", {"exif": True, "xmp": True}),
        ("HEIF", {"exif": True, "xmp": True}),
        ("GIF", {"comment": True}),
        ("JPEG", {"icc": True}),
        ("PNG", {"icc": True}),
    ],
    ids=lambda v: f"{v[0]}-{'-'.join(v[1])}",
)
def test_metadata_canaries_absent(fmt_kw: tuple[str, dict[str, Any]]) -> None:
    fmt, wanted = fmt_kw
    ex = Image.Exif()
    ex[0x010F] = "CANARY-make"
    ex[0x0131] = "CANARY-software"
    kw: dict[str, Any] = {}
    if "pnginfo" in wanted:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "CANARY tEXt")
        info.add_text("Author", "CANARY zTXt", zip=True)
        info.add_itxt("Title", "CANARY iTXt", lang="en", tkey="t")
        kw["pnginfo"] = info
    if "exif" in wanted:
        kw["exif"] = ex.tobytes() if fmt == "HEIF" else ex
    if "xmp" in wanted:
        kw["xmp"] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>CANARY xmp</x:xmpmeta>"
    if "comment" in wanted:
        kw["comment"] = b"CANARY <script>alert(1)</script>"
    if "icc" in wanted:
        kw["icc_profile"] = samples.srgb_like_icc(b"CANARY icc")
    im = samples.photo(64, 48)
    data = samples.heic(im, **kw) if fmt == "HEIF" else samples.encode(im, fmt, **kw)
    assert b"CANARY" in data or fmt in ("PNG", "HEIF", "AVIF")  # compressed containers
    result = process_image(data)
    for derivative in result.derivatives.values():
        assert_clean_jpeg(derivative.data)
