"""Perceptual hashing and near-duplicate matching; pure functions, the DB query lives elsewhere."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Final, TypeVar

from PIL import Image

K = TypeVar("K")

MASK64: Final = (1 << 64) - 1
# Distance at or below which two pHashes are treated as the same picture (re-posts, re-encodes,
# resizes). A setting may override it; 64-bit DCT hashes of unrelated photos sit near 32.
DEFAULT_MAX_DISTANCE: Final = 8

_DCT_IN: Final = 32
_DCT_OUT: Final = 8


def to_signed64(value: int) -> int:
    """The same 64 bits as a signed integer, so it fits a BIGINT column."""
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    """The same 64 bits as an unsigned integer."""
    return value & MASK64


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes, signed or unsigned."""
    return ((a ^ b) & MASK64).bit_count()


def near_duplicates(
    phash: int, candidates: Iterable[tuple[K, int]], *, max_distance: int
) -> list[K]:
    """Keys whose hash is within max_distance bits of phash, closest first (ties keep order)."""
    # Only the few hits are sorted, not the whole window (20,000 recent hashes per image).
    hits = [
        (distance, i, key)
        for i, (key, other) in enumerate(candidates)
        if (distance := ((phash ^ other) & MASK64).bit_count()) <= max_distance
    ]
    hits.sort(key=lambda t: (t[0], t[1]))
    return [key for _distance, _i, key in hits]


@functools.cache
def _cosines() -> tuple[tuple[float, ...], ...]:
    n = _DCT_IN
    return tuple(
        tuple(math.cos(math.pi * k * (2 * x + 1) / (2 * n)) for x in range(n))
        for k in range(_DCT_OUT)
    )


def perceptual_hash(image: Image.Image) -> int:
    """64-bit DCT pHash (as in the imagehash library), returned signed."""
    gray = image.convert("L").resize((_DCT_IN, _DCT_IN), Image.Resampling.BOX)
    pixels = gray.tobytes()
    cos = _cosines()
    n = _DCT_IN
    # Separable DCT-II restricted to the 8 lowest frequencies in each direction.
    rows = [
        [
            sum(c * p for c, p in zip(cos_k, pixels[y * n : (y + 1) * n], strict=True))
            for cos_k in cos
        ]
        for y in range(n)
    ]
    coeffs = [
        sum(cos_v[y] * rows[y][u] for y in range(n)) for cos_v in cos for u in range(_DCT_OUT)
    ]
    median = sorted(coeffs)[len(coeffs) // 2 - 1 : len(coeffs) // 2 + 1]
    threshold = (median[0] + median[1]) / 2
    value = 0
    for c in coeffs:
        value = (value << 1) | (c > threshold)
    return to_signed64(value)
