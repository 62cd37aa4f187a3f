"""Media pipeline: every image is checked, decoded, oriented, stripped, re-encoded and hashed.

Public API: ``process_image``, ``MediaLimits``, ``ProcessedImage``, ``Derivative`` and
``ImageRejected``; storage, de-duplication and text rendering live in the submodules
``storage``, ``dedup`` and ``text``.
"""

from aggregator.media.core import (
    SLIDE_SIZE_4K,
    SLIDE_SIZE_HD,
    Derivative,
    ImageRejected,
    MediaLimits,
    ProcessedImage,
    RejectCode,
)
from aggregator.media.formats import PILLOW_FORMATS
from aggregator.media.pipeline import process_image

ALLOWED_FORMATS = tuple(PILLOW_FORMATS)

__all__ = [
    "ALLOWED_FORMATS",
    "SLIDE_SIZE_4K",
    "SLIDE_SIZE_HD",
    "Derivative",
    "ImageRejected",
    "MediaLimits",
    "ProcessedImage",
    "RejectCode",
    "process_image",
]
