"""process_image: the result contract, sizes, colour handling and hardening."""

from __future__ import annotations

import re
import subprocess
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from PIL import Image, ImageFile

from aggregator.errors import MediaError
from aggregator.media import (
    SLIDE_SIZE_4K,
    ImageRejected,
    MediaLimits,
    ProcessedImage,
    process_image,
)
from tests import media_samples as samples
from tests.media_samples import close, decode, mean
from tests.test_media_metadata import assert_clean_jpeg

# --- contract ---------------------------------------------------------------------------------


def test_result_contract() -> None:
    data = samples.encode(samples.photo(800, 600), "JPEG", quality=90)
    result = process_image(data, filename="holiday.jpg")
    assert isinstance(result, ProcessedImage)
    assert set(result.derivatives) == {"slide", "thumb"}
    slide, thumb = result.derivatives["slide"], result.derivatives["thumb"]
    assert (result.width, result.height) == (slide.width, slide.height) == (800, 600)
    assert (thumb.width, thumb.height) == (480, 360)
    for d in (slide, thumb):
        assert d.content_type == "image/jpeg"
        assert decode(d.data).size == (d.width, d.height)
        assert_clean_jpeg(d.data)
    assert re.fullmatch(r"[0-9a-f]{64}", result.sha256)
    assert re.fullmatch(r"#[0-9a-f]{6}", result.color)
    assert -(2**63) <= result.phash < 2**63
    assert result.source_format == "jpeg"
    with pytest.raises(FrozenInstanceError):
        result.width = 1  # type: ignore[misc]


def test_output_is_deterministic() -> None:
    data = samples.encode(samples.photo(), "PNG")
    a, b = process_image(data), process_image(data)
    assert a.sha256 == b.sha256 and a.phash == b.phash and a.color == b.color
    assert a.slide.data == b.slide.data


def test_reject_codes_and_status() -> None:
    expected = {
        "too_large": 413,
        "too_many_pixels": 413,
        "unsupported_format": 415,
        "corrupt": 422,
        "empty": 422,
        "bad_dimensions": 422,
    }
    for code, status in expected.items():
        exc = ImageRejected(code)  # type: ignore[arg-type]
        assert isinstance(exc, MediaError)
        assert exc.code == code and exc.status_code == status
        assert exc.message and exc.message[0].isupper()


def test_too_large_is_checked_before_anything_else() -> None:
    limits = MediaLimits(max_bytes=1000)
    data = samples.encode(samples.photo(), "PNG")
    with pytest.raises(ImageRejected) as info:
        process_image(data, limits=limits)
    assert info.value.code == "too_large" and "MB" in info.value.message


def test_default_limits() -> None:
    limits = MediaLimits()
    assert limits.max_bytes == 16 * 1024 * 1024
    assert limits.max_pixels == 40_000_000
    assert limits.slide_size == (1920, 1080) and limits.thumb_size == 480
    with pytest.raises(ValueError):
        MediaLimits(max_pixels=200_000_000)  # above Pillow's own warning threshold


def test_pixel_limit_is_a_setting() -> None:
    data = samples.encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageRejected) as info:
        process_image(data, limits=MediaLimits(max_pixels=9_999))
    assert info.value.code == "too_many_pixels" and "megapixels" in info.value.message
    assert process_image(data, limits=MediaLimits(max_pixels=10_000)).width == 100


def test_filename_and_declared_type_are_ignored() -> None:
    data = samples.encode(samples.photo(), "JPEG")
    for name in ("x.png", "a.123456_abcd", "../../etc/passwd", None):
        assert process_image(data, filename=name).source_format == "jpeg"
    with pytest.raises(ImageRejected) as info:
        process_image(b"<html><script>alert(1)</script></html>", filename="photo.jpg")
    assert info.value.code == "unsupported_format"


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "slide", "thumb"),
    [
        ((4000, 3000), (1440, 1080), (480, 360)),
        ((3000, 4000), (810, 1080), (360, 480)),
        ((6000, 1000), (1920, 320), (480, 80)),
        ((100, 50), (100, 50), (100, 50)),  # never upscaled
        ((1920, 1080), (1920, 1080), (480, 270)),
    ],
)
def test_slide_and_thumb_sizes(
    size: tuple[int, int], slide: tuple[int, int], thumb: tuple[int, int]
) -> None:
    data = samples.encode(Image.new("RGB", size, (10, 120, 200)), "JPEG", quality=60)
    result = process_image(data)
    assert (result.slide.width, result.slide.height) == slide
    assert (result.thumb.width, result.thumb.height) == thumb
    assert close(mean(decode(result.slide.data), (0, 0, *slide)), (10, 120, 200), tol=6)


def test_4k_slides() -> None:
    data = samples.encode(Image.new("RGB", (6000, 4000), (200, 30, 30)), "JPEG", quality=50)
    result = process_image(data, limits=replace(MediaLimits(), slide_size=SLIDE_SIZE_4K))
    assert (result.width, result.height) == (3240, 2160)
    assert (result.thumb.width, result.thumb.height) == (480, 320)


def test_big_jpeg_draft_mode_keeps_quality() -> None:
    im = samples.quadrants(4000, 2000)
    result = process_image(samples.encode(im, "JPEG", quality=90))
    out = decode(result.slide.data)
    assert out.size == (1920, 960)
    assert close(mean(out, (0, 0, 900, 440)), samples.RED, tol=8)
    assert close(mean(out, (1000, 500, 1920, 960)), samples.WHITE, tol=8)


# --- colour -------------------------------------------------------------------------------------


def test_icc_profile_is_converted_to_srgb() -> None:
    # Pixels are "red" in a profile whose red primary is sRGB green: sRGB output must be green.
    im = Image.new("RGB", (40, 30), samples.RED)
    icc = samples.srgb_like_icc(b"swapped", swap_red_green=True)
    for fmt in ("PNG", "JPEG", "WEBP"):
        data = samples.encode(im, fmt, icc_profile=icc, **({"quality": 95} if fmt != "PNG" else {}))
        out = decode(process_image(data).slide.data)
        assert close(mean(out, (0, 0, 40, 30)), samples.GREEN, tol=45), fmt
    plain = decode(process_image(samples.encode(im, "PNG")).slide.data)
    assert close(mean(plain, (0, 0, 40, 30)), samples.RED, tol=10)


def test_mismatched_or_broken_icc_profile_is_ignored() -> None:
    im = Image.new("L", (20, 20), 128)
    data = samples.encode(im, "PNG", icc_profile=samples.srgb_like_icc())  # RGB profile on L
    assert close(mean(decode(process_image(data).slide.data), (0, 0, 20, 20)), (128,) * 3, 6)
    junk = samples.encode(Image.new("RGB", (20, 20), samples.BLUE), "PNG", icc_profile=b"junk" * 40)
    out = decode(process_image(junk).slide.data)
    assert close(mean(out, (0, 0, 20, 20)), samples.BLUE, tol=10)


def test_cmyk_jpeg_becomes_rgb() -> None:
    out = decode(process_image(samples.ODD_VALID["cmyk.jpg"]()).slide.data)
    assert out.mode == "RGB"
    assert close(mean(out, (0, 0, 40, 30)), samples.RED, tol=20)


def test_16_bit_grey_keeps_its_tone() -> None:
    out = decode(process_image(samples.ODD_VALID["i16.png"]()).slide.data)
    assert close(mean(out, (0, 0, 40, 30)), (128, 128, 128), tol=4)


@pytest.mark.parametrize(
    "name",
    ["palette_transparent.png", "rgba.png", "rgb_trns.png", "gray_trns.png", "la.png", "rgba.webp"],
)
def test_transparency_is_composited_on_neutral_grey(name: str) -> None:
    result = process_image(samples.ODD_VALID[name]())
    out = decode(result.slide.data)
    bg = MediaLimits().background
    if name == "palette_transparent.png":  # left half transparent, right half blue
        assert close(mean(out, (2, 2, 18, 28)), bg, tol=6)
        assert close(mean(out, (22, 2, 38, 28)), samples.BLUE, tol=10)
    elif name in ("rgba.png", "rgb_trns.png", "gray_trns.png"):  # all transparent
        assert close(mean(out, (0, 0, 40, 30)), bg, tol=6)
    elif name == "la.png":  # grey 200 at half opacity over 128
        assert close(mean(out, (0, 0, 40, 30)), (164, 164, 164), tol=6)
    else:  # blue at half opacity over grey
        assert close(mean(out, (0, 0, 40, 30)), (64, 64, 191), tol=12)


def test_placeholder_color_and_phash_follow_content() -> None:
    red = process_image(samples.encode(Image.new("RGB", (50, 50), (200, 20, 20)), "PNG"))
    assert close(tuple(int(red.color[i : i + 2], 16) for i in (1, 3, 5)), (200, 20, 20), 4)
    from aggregator.media.dedup import hamming

    original = samples.scene(seed=1)
    a = process_image(samples.encode(original, "PNG"))
    # A re-post: smaller, recompressed, slightly brighter.
    repost = original.resize((300, 225)).point(lambda v: min(255, v + 10))
    b = process_image(samples.encode(repost, "JPEG", quality=40))
    c = process_image(samples.encode(samples.scene(seed=2), "PNG"))
    assert hamming(a.phash, b.phash) <= 6
    assert hamming(a.phash, c.phash) > 16


# --- hardening ----------------------------------------------------------------------------------


def test_load_truncated_images_stays_false() -> None:
    import aggregator.media  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_image_open_is_always_given_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real_open = Image.open

    def spy(fp: Any, mode: str = "r", formats: Any = None) -> Image.Image:
        seen.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", spy)
    allowed = {"JPEG", "PNG", "GIF", "WEBP", "AVIF"}
    for data in (
        samples.encode(samples.photo(), "JPEG"),
        samples.encode(samples.photo(), "PNG"),
        samples.ODD_VALID["animated.gif"](),
        samples.ODD_VALID["lossy.webp"](),
        samples.ODD_VALID["avif"](),
        samples.refused_format("TIFF"),
        samples.HOSTILE["eps_as.png"][0](),
    ):
        try:
            process_image(data)
        except ImageRejected:
            pass
    assert seen and all(f is not None and set(f) <= allowed and len(f) == 1 for f in seen)


def test_ghostscript_is_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    for data in (samples.HOSTILE["eps_as.png"][0](), b"%!PS-Adobe-3.0\n" + b"\0" * 100):
        with pytest.raises(ImageRejected) as info:
            process_image(data)
        assert info.value.code == "unsupported_format"


def test_srgb_profile_is_accepted_without_change() -> None:
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = samples.encode(Image.new("RGB", (30, 20), (200, 100, 50)), "PNG", icc_profile=srgb)
    out = decode(process_image(data).slide.data)
    assert close(mean(out, (0, 0, 30, 20)), (200, 100, 50), tol=4)


def test_concurrent_calls_are_independent() -> None:
    from concurrent.futures import ThreadPoolExecutor

    inputs = [samples.oriented(n) for n in range(1, 9)] + [samples.gps_exif_jpeg()] * 4
    expected = [process_image(d).sha256 for d in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda d: process_image(d).sha256, inputs * 3))
    assert got == expected * 3


def test_heic_without_the_plugin_is_415_with_a_readable_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    data = samples.ODD_VALID["heic"]()
    assert process_image(data).source_format == "heif"
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # makes the import fail
    with pytest.raises(ImageRejected) as info:
        process_image(data)
    assert info.value.code == "unsupported_format" and "HEIC" in info.value.message
