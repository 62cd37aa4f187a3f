"""The one entry point every image passes: check, decode, orient, convert, strip, size, hash."""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Final

from PIL import Image

from aggregator.media.color import flatten, placeholder_color, to_srgb
from aggregator.media.core import Derivative, ImageRejected, MediaLimits, ProcessedImage
from aggregator.media.decode import (
    TRANSPOSE,
    check_dimensions,
    decode,
    fit_within,
    oriented_size,
)
from aggregator.media.dedup import perceptual_hash
from aggregator.media.formats import header_size, sniff

log = logging.getLogger(__name__)

DEFAULT_LIMITS: Final = MediaLimits()
JPEG: Final = "image/jpeg"
# Pillow resamples to within this factor of the target with fast box reduction first.
_REDUCING_GAP: Final = 2.0


def process_image(
    data: bytes, *, filename: str | None = None, limits: MediaLimits | None = None
) -> ProcessedImage:
    """Turn untrusted bytes into clean sRGB JPEG derivatives, or raise ImageRejected.

    ``filename`` is used for log messages only: the format comes from the bytes.
    No exception other than ImageRejected leaves this function.
    """
    limits = limits or DEFAULT_LIMITS
    try:
        return _process(bytes(data), limits)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels") from exc
    except Image.DecompressionBombWarning as exc:  # raised when warnings are errors
        raise ImageRejected("too_many_pixels") from exc
    except Exception as exc:  # noqa: BLE001 - the contract: only ImageRejected escapes
        log.info("rejecting %r as corrupt: %s: %s", filename, type(exc).__name__, exc)
        raise ImageRejected("corrupt") from exc


def _process(data: bytes, limits: MediaLimits) -> ProcessedImage:
    if not data:
        raise ImageRejected("empty")
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "too_large",
            f"The file is {len(data) / 2**20:.1f} MB; the limit is "
            f"{limits.max_bytes / 2**20:g} MB. Please send a smaller photo.",
        )
    fmt = sniff(data)
    if fmt is None:
        raise ImageRejected("unsupported_format")
    declared = header_size(data, fmt)
    if declared is not None:
        check_dimensions(*declared, limits)

    decoded = decode(data, fmt, limits)
    shown = oriented_size(decoded.full_size, decoded.orientation)
    slide_size = fit_within(shown, limits.slide_size)
    thumb_size = fit_within(slide_size, (limits.thumb_size, limits.thumb_size))

    # Resize in stored orientation and colour space (cheaper), then convert and rotate.
    image = _resize(decoded.image, oriented_size(slide_size, decoded.orientation))
    image = flatten(to_srgb(image, decoded.icc_profile), limits.background)
    method = TRANSPOSE.get(decoded.orientation)
    if method is not None:
        image = image.transpose(method)
    thumb = _resize(image, thumb_size)

    slide = _encode(image, limits.slide_quality)
    return ProcessedImage(
        derivatives={"slide": slide, "thumb": _encode(thumb, limits.thumb_quality)},
        width=slide.width,
        height=slide.height,
        sha256=hashlib.sha256(slide.data).hexdigest(),
        phash=perceptual_hash(thumb),
        color=placeholder_color(thumb),
        source_format=fmt,
    )


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)


def _encode(image: Image.Image, quality: int) -> Derivative:
    """Baseline sRGB JPEG with no metadata segment at all (no EXIF, ICC, XMP or comment)."""
    image.info = {}  # Pillow copies a COM comment from info unless told otherwise
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, optimize=False, progressive=False, exif=b"")
    return Derivative(buf.getvalue(), image.width, image.height, JPEG)
