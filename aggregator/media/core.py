"""Value types of the media pipeline: limits, results and the one error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aggregator.errors import MediaError
from aggregator.i18n import N_

MiB: Final = 1024 * 1024

SLIDE_SIZE_HD: Final = (1920, 1080)
SLIDE_SIZE_4K: Final = (3840, 2160)

# Pillow warns above this many pixels and raises above twice as many; our own cap must stay
# below it so that Pillow's warning can never be the first line of defence.
PILLOW_WARN_PIXELS: Final = 89_478_485

RejectCode = Literal[
    "too_large", "too_many_pixels", "unsupported_format", "corrupt", "empty", "bad_dimensions"
]

_STATUS: Final[dict[str, int]] = {
    "too_large": 413,
    "too_many_pixels": 413,
    "unsupported_format": 415,
}

_MESSAGES: Final[dict[str, str]] = {
    "too_large": N_("The file is too large. Please send a smaller photo."),
    "too_many_pixels": N_("The picture has too many pixels. Please send a smaller photo."),
    "unsupported_format": N_(
        "This kind of file is not supported. "
        "Please send a JPEG, PNG, GIF, WebP, HEIC or AVIF photo."
    ),
    "corrupt": N_("The file could not be read as a picture. It may be damaged or incomplete."),
    "empty": N_("The file is empty."),
    "bad_dimensions": N_("The picture has impossible dimensions (zero or absurdly large)."),
}


class ImageRejected(MediaError):
    """The pipeline refused an image; ``code`` is stable, ``message`` is for people."""

    code: RejectCode

    def __init__(self, code: RejectCode, message: str | None = None) -> None:
        super().__init__(message or _MESSAGES[code], code=code)
        self.status_code = _STATUS.get(code, 422)

    def __repr__(self) -> str:
        return f"ImageRejected({self.code!r}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Input caps and output sizes; built from settings, the defaults follow security.md (c)."""

    max_bytes: int = 16 * MiB
    max_pixels: int = 40_000_000
    slide_size: tuple[int, int] = SLIDE_SIZE_HD
    thumb_size: int = 480
    # No camera, phone or screen produces a side longer than this; longer is an attack.
    max_side: int = 65_535
    slide_quality: int = 82
    thumb_quality: int = 80
    # Transparent areas are composited on a neutral grey that works for dark and light content.
    background: tuple[int, int, int] = (128, 128, 128)

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        if not 1 <= self.max_pixels <= PILLOW_WARN_PIXELS:
            raise ValueError(f"max_pixels must be between 1 and {PILLOW_WARN_PIXELS}")
        if min(self.slide_size) < 1 or self.thumb_size < 1 or self.max_side < 1:
            raise ValueError("output sizes must be positive")
        for quality in (self.slide_quality, self.thumb_quality):
            if not 1 <= quality <= 95:
                raise ValueError("JPEG quality must be between 1 and 95")


@dataclass(frozen=True, slots=True)
class Derivative:
    """One encoded output image."""

    data: bytes = field(repr=False)
    width: int
    height: int
    content_type: str


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """What the pipeline made of one input: derivatives plus identity and display hints."""

    derivatives: dict[str, Derivative]
    width: int
    height: int
    sha256: str
    phash: int
    color: str
    source_format: str

    def columns(self) -> dict[str, Any]:
        """What a stored image row keeps of it (MediaAsset, StagedPhoto): identity and hints."""
        return {
            "sha256": self.sha256,
            "phash": self.phash,
            "width": self.width,
            "height": self.height,
            "color": self.color,
            "source_format": self.source_format,
        }

    @property
    def slide(self) -> Derivative:
        """The projector-sized derivative."""
        return self.derivatives["slide"]

    @property
    def thumb(self) -> Derivative:
        """The thumbnail derivative."""
        return self.derivatives["thumb"]
