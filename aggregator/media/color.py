"""Colour: ICC profiles to sRGB, alpha flattened on a neutral background, placeholder colour."""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageCms

log = logging.getLogger(__name__)

_ICC_MODES = {"L": "GRAY", "RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK"}


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert an L, LA, RGB, RGBA or CMYK image to sRGB (RGB or RGBA), honouring its profile."""
    alpha = None
    if image.mode == "LA":
        alpha = image.getchannel("A")
        image = image.convert("L")
    out = _apply_profile(image, icc_profile) if icc_profile else None
    if out is None:
        out = image if image.mode in ("RGB", "RGBA") else image.convert("RGB")
    if alpha is not None:
        out = out.convert("RGB")
        out.putalpha(alpha)
    return out


def _apply_profile(image: Image.Image, icc_profile: bytes) -> Image.Image | None:
    """The profile-converted image, or None when the profile is unusable for this image."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        space = source.profile.xcolor_space.strip()
        if space != _ICC_MODES.get(image.mode):
            return None  # a profile that does not match the pixels is ignored, not trusted
        if space == "RGB" and "srgb" in (source.profile.profile_description or "").lower():
            return None  # already sRGB (most cameras and Android phones): skip a ~30 ms transform
        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        result = ImageCms.profileToProfile(
            image,
            source,
            _srgb(),
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode=out_mode,
        )
    except Exception as exc:  # noqa: BLE001 - a broken profile is ignored, the pixels still count
        log.info("ignoring unusable ICC profile: %s", exc)
        return None
    return result


def flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """RGB image with any alpha composited over the background colour."""
    if image.mode != "RGBA":
        return image if image.mode == "RGB" else image.convert("RGB")
    base = Image.new("RGB", image.size, background)
    base.paste(image, mask=image.getchannel("A"))
    return base


def placeholder_color(image: Image.Image) -> str:
    """Mean colour as #rrggbb, shown while the slide loads."""
    pixel = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    r, g, b = (int(c) for c in pixel[:3])
    return f"#{r:02x}{g:02x}{b:02x}"
