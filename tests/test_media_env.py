"""The imaging stack this project relies on is present and recent enough (security.md X3)."""

from __future__ import annotations

import PIL
from PIL import Image, features


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def test_pillow_is_at_least_12_2() -> None:
    assert _version(PIL.__version__) >= (12, 2, 0), PIL.__version__


def test_webp_and_avif_support() -> None:
    assert features.check("webp")
    assert features.check("avif")
    Image.init()
    assert {"WEBP", "AVIF"} <= set(Image.OPEN)


def test_heif_support() -> None:
    import pillow_heif

    assert pillow_heif.libheif_info()["decoders"]
    # We call pillow-heif directly; importing aggregator.media must not register it globally.
    import aggregator.media  # noqa: F401

    assert "HEIF" not in Image.OPEN
