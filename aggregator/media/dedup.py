"""Perceptual hashing and near-duplicate matching; no database here (recent_hashes reads it)."""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Iterable
from typing import Final

from PIL import Image

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


# Multi-index hashing: the 64 bits are cut into these bands (shift, width). Two hashes within
# distance d of each other differ in at most d // 5 bits of at least one band (pigeonhole), so
# only hashes whose band is that close to the new one's need comparing: for d = 8, about 70
# lookups and a handful of candidates instead of every hash of the window.
_BANDS: Final = ((0, 13), (13, 13), (26, 13), (39, 13), (52, 12))


@functools.cache
def _flips(width: int, radius: int) -> tuple[int, ...]:
    """Every mask of at most ``radius`` set bits among ``width`` bits (0 first)."""
    return tuple(
        sum(1 << bit for bit in bits)
        for count in range(radius + 1)
        for bits in itertools.combinations(range(width), count)
    )


@functools.cache
def _probe_count(radius: int) -> int:
    """How many lookups a search of the bands within ``radius`` bits of each makes."""
    return sum(len(_flips(width, radius)) for _shift, width in _BANDS)


class HashWindow:
    """Image hashes by asset id, searched by exact sha256 and by pHash distance.

    ``best_match`` costs a few dictionary lookups whatever the size (a scan of 20,000 hashes
    took 2.6 ms per new image, in the write transaction every upload waits on). A very wide
    distance, for which probing the bands would cost more than a scan, is scanned.
    Not thread-safe: callers that share one guard it with a lock.
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[int, str]] = {}  # id -> (unsigned pHash, sha256)
        self._ids: list[int] = []  # ascending
        self._by_sha: dict[str, list[int]] = {}
        self._bands: tuple[dict[int, list[int]], ...] = tuple({} for _band in _BANDS)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._rows

    def row(self, asset_id: int) -> tuple[int, str] | None:
        """(signed pHash, sha256) of ``asset_id``, if kept."""
        found = self._rows.get(asset_id)
        return None if found is None else (to_signed64(found[0]), found[1])

    def add(self, asset_id: int, phash: int, sha256: str) -> None:
        """Keep (or replace) the hashes of ``asset_id``."""
        self.add_many([(asset_id, phash, sha256)])

    def add_many(self, rows: Iterable[tuple[int, int, str]]) -> None:
        """Keep (or replace) the hashes of each (asset id, pHash, sha256).

        A process's first page adds 20,000 at once, in the write transaction that uploads
        wait on: each index is filled in its own loop (2–3× faster than row by row).
        """
        new = [(asset_id, phash & MASK64, sha256) for asset_id, phash, sha256 in rows]
        for asset_id, _value, _sha in new:
            if asset_id in self._rows:
                self.remove(asset_id)
        self._rows.update((asset_id, (value, sha)) for asset_id, value, sha in new)
        added = sorted(asset_id for asset_id, _value, _sha in new)
        if self._ids and added and added[0] < self._ids[-1]:
            self._ids = sorted(self._ids + added)
        else:
            self._ids.extend(added)
        by_sha = self._by_sha
        for asset_id, _value, sha in new:
            same = by_sha.get(sha)
            if same is None:
                by_sha[sha] = [asset_id]
            else:
                same.append(asset_id)
        for (shift, width), bucket in zip(_BANDS, self._bands, strict=True):
            mask = (1 << width) - 1
            for asset_id, value, _sha in new:
                band = (value >> shift) & mask
                found = bucket.get(band)  # not setdefault, which makes a list every time
                if found is None:
                    bucket[band] = [asset_id]
                else:
                    found.append(asset_id)

    def remove(self, asset_id: int) -> None:
        """Forget ``asset_id`` (nothing if it is not kept)."""
        found = self._rows.pop(asset_id, None)
        if found is None:
            return
        value, sha256 = found
        del self._ids[bisect.bisect_left(self._ids, asset_id)]
        same = self._by_sha[sha256]
        same.remove(asset_id)
        if not same:
            del self._by_sha[sha256]
        for (shift, width), bucket in zip(_BANDS, self._bands, strict=True):
            band = (value >> shift) & ((1 << width) - 1)
            ids = bucket[band]
            ids.remove(asset_id)
            if not ids:
                del bucket[band]

    def ids_above(self, above: int) -> list[int]:
        """The kept ids greater than ``above``, ascending."""
        return self._ids[bisect.bisect_right(self._ids, above) :]

    def keep_newest(self, count: int) -> None:
        """Forget all but the ``count`` highest ids."""
        for asset_id in self._ids[: max(len(self._ids) - count, 0)]:
            self.remove(asset_id)

    def best_match(self, sha256: str, phash: int, max_distance: int) -> tuple[int, int] | None:
        """The image this one repeats, as (distance, asset id): the newest with the same
        sha256 (distance -1), else the closest pHash within ``max_distance`` bits, the newest
        of equals; None if there is none."""
        same = self._by_sha.get(sha256)
        if same:
            return -1, max(same)
        value = to_unsigned64(phash)
        radius = max_distance // len(_BANDS)
        rows = self._rows
        if _probe_count(radius) >= len(rows):
            candidates: Iterable[int] = rows
        else:  # an id may come from several bands: compared twice, no harm
            candidates = [
                asset_id
                for (shift, width), bucket in zip(_BANDS, self._bands, strict=True)
                for mask in _flips(width, radius)
                for asset_id in bucket.get(((value >> shift) & ((1 << width) - 1)) ^ mask, ())
            ]
        hits = [
            (distance, -asset_id)
            for asset_id in candidates
            if (distance := (value ^ rows[asset_id][0]).bit_count()) <= max_distance
        ]
        if not hits:
            return None
        distance, newest = min(hits)
        return distance, -newest


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
