"""The malicious and malformed corpus of security.md (b): each input is processed or cleanly
rejected with the expected code; odd-but-valid inputs all become sRGB JPEGs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from aggregator.media import ImageRejected, process_image
from tests import media_samples as samples


def outcome(data: bytes) -> str:
    """'ok' or the rejection code; any other exception fails the test by propagating."""
    try:
        result = process_image(data)
    except ImageRejected as exc:
        assert exc.message
        assert exc.status_code in (413, 415, 422)
        return exc.code
    for derivative in result.derivatives.values():
        im = Image.open(io.BytesIO(derivative.data))
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.width >= 1 and im.height >= 1
        assert b"<script" not in derivative.data.lower()
        assert b"canary" not in derivative.data.lower()
    assert max(result.width, result.height) <= 1920
    assert max(result.thumb.width, result.thumb.height) <= 480
    return "ok"


@pytest.mark.parametrize("name", list(samples.HOSTILE))
def test_hostile_corpus(name: str) -> None:
    factory, expected = samples.HOSTILE[name]
    assert outcome(factory()) == expected


@pytest.mark.parametrize("fmt", samples.REFUSED_PILLOW_FORMATS)
def test_other_formats_are_refused(fmt: str) -> None:
    assert outcome(samples.refused_format(fmt)) == "unsupported_format"


@pytest.mark.parametrize("name", list(samples.ODD_VALID))
def test_odd_but_valid_images_are_processed(name: str) -> None:
    assert outcome(samples.ODD_VALID[name]()) == "ok"


def test_animation_keeps_the_first_frame() -> None:
    for name in ("animated.gif", "animated.webp", "animated.png"):
        result = process_image(samples.ODD_VALID[name]())
        im = Image.open(io.BytesIO(result.slide.data)).convert("RGB")
        r, g, b = im.getpixel((16, 12))  # type: ignore[misc]
        assert r > 200 and g < 60 and b < 60, name


def test_polyglot_gif_loses_its_script() -> None:
    data = samples.polyglot_gif()
    assert b"<script>" in data
    result = process_image(data, filename="x.gif")
    assert all(b"<script" not in d.data for d in result.derivatives.values())


def test_truncation_at_many_points_is_rejected_cleanly() -> None:
    seeds = [
        samples.encode(samples.photo(64, 48), "JPEG"),
        samples.encode(samples.photo(64, 48), "PNG"),
        samples.encode(samples.photo(64, 48), "GIF"),
        samples.encode(samples.photo(64, 48), "WEBP"),
    ]
    for data in seeds:
        for cut in range(1, len(data), max(1, len(data) // 40)):
            assert outcome(data[:cut]) in {"ok", "corrupt", "unsupported_format", "empty"}


def test_own_pixel_check_runs_before_pillow_can_warn() -> None:
    """With warnings NOT turned into errors (production), big images are still refused and
    Pillow never gets as far as emitting its DecompressionBombWarning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("warn_dims.png", "huge_dims.png", "huge_canvas.gif", "webp_canvas.webp"):
            assert outcome(samples.HOSTILE[name][0]()) == "too_many_pixels"
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
