"""Decoding: one allowlisted parser per sniffed format, dimension checks before any pixel work."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image

from aggregator.media.core import ImageRejected, MediaLimits
from aggregator.media.formats import PILLOW_FORMATS

ORIENTATION_TAG: Final = 0x0112

# EXIF Orientation -> the transpose that makes the stored pixels upright (as ImageOps does).
TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(slots=True)
class Decoded:
    """A fully loaded first frame with what is needed to finish it."""

    image: Image.Image
    orientation: int
    full_size: tuple[int, int]  # stored (unrotated) size before any draft-mode reduction
    icc_profile: bytes | None


def check_dimensions(width: int, height: int, limits: MediaLimits) -> None:
    """Reject zero, absurd or too many pixels; called on header values before decoding."""
    if width < 1 or height < 1:
        raise ImageRejected("bad_dimensions")
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The picture is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {limits.max_pixels / 1e6:g} megapixels. Please send a smaller photo.",
        )
    if max(width, height) > limits.max_side:
        raise ImageRejected("bad_dimensions")


def oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Displayed size of a stored size under an EXIF orientation (5–8 swap the axes)."""
    return (size[1], size[0]) if orientation >= 5 else size


def fit_within(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """Largest size with the same aspect inside box, never upscaled, never below 1 px."""
    w, h = size
    scale = min(1.0, box[0] / w, box[1] / h)
    if scale >= 1.0:
        return size
    return max(1, round(w * scale)), max(1, round(h * scale))


def read_orientation(image: Image.Image) -> int:
    """EXIF Orientation 1–8; malformed or missing EXIF means 1 (ignored, never fatal)."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - malformed EXIF must not fail the upload (Pillow #8548)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def decode(data: bytes, fmt: str, limits: MediaLimits) -> Decoded:
    """Decode the first frame with the one parser allowed for fmt; draft mode for big JPEGs."""
    if fmt == "heif":
        return _decode_heif(data, limits)
    # A BytesIO needs no closing; keeping the ImageFile avoids copying the decoded pixels.
    im = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[fmt]])
    full_size = im.size
    check_dimensions(*full_size, limits)
    orientation = 1
    if fmt == "jpeg":
        # JPEG EXIF is parsed at open, so the orientation is known before decoding and
        # the DCT can be scaled down (1/2, 1/4, 1/8) to just above the slide size.
        orientation = read_orientation(im)
        shown = fit_within(oriented_size(full_size, orientation), limits.slide_size)
        im.draft(None, oriented_size(shown, orientation))
    im.load()  # a full decode: truncation and corrupt data fail here, never verify() alone
    if fmt != "jpeg":
        orientation = read_orientation(im)  # PNG eXIf may follow IDAT
    return _finish(im, orientation, full_size)


def _finish(im: Image.Image, orientation: int, full_size: tuple[int, int]) -> Decoded:
    icc = im.info.get("icc_profile")
    image = normalize_mode(im)
    image.info = {}  # from here on no source metadata travels with the pixels
    return Decoded(image, orientation, full_size, icc if isinstance(icc, bytes) and icc else None)


def _decode_heif(data: bytes, limits: MediaLimits) -> Decoded:
    try:
        import pillow_heif
    except ImportError as exc:
        raise ImageRejected(
            "unsupported_format", "HEIC photos are not supported on this server."
        ) from exc
    # Not registered as a Pillow opener: that would be global state; we call it directly.
    heif: Any = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
    width, height = heif.size
    check_dimensions(int(width), int(height), limits)
    im = heif.to_pillow()
    # libheif has already applied irot/imir and pillow-heif reset EXIF Orientation to 1.
    return _finish(im, read_orientation(im), im.size)


def normalize_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB, RGBA or CMYK, keeping alpha and full range."""
    mode = im.mode
    if "transparency" in im.info and mode in ("P", "L", "RGB", "1"):
        return im.convert("RGBA")  # palette index or a tRNS colour key becomes real alpha
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return im
    if mode == "P":
        return im.convert("RGB")
    if mode in ("PA", "RGBa"):
        return im.convert("RGBA")
    if mode == "La":
        return im.convert("LA")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I;16") or mode == "I":
        # 16-bit samples: Pillow's convert("L") clips at 255, so scale the range down first.
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if mode == "F":
        return im.convert("L")
    return im.convert("RGB")
