"""Hamming distance on signed 64-bit hashes and the window that finds near duplicates."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.media.dedup import HashWindow, hamming, to_signed64, to_unsigned64

u64 = st.integers(0, 2**64 - 1)


def test_hamming_basics() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, 1) == 1
    assert hamming(0, -1) == 64  # all bits set, as stored in a signed BIGINT
    assert hamming(-1, 2**64 - 1) == 0
    assert hamming(-(2**63), 2**63) == 0
    assert hamming(0b1011, 0b0110) == 3


@given(u64, u64)
def test_signed_and_unsigned_forms_agree(a: int, b: int) -> None:
    sa, sb = to_signed64(a), to_signed64(b)
    assert -(2**63) <= sa < 2**63
    assert to_unsigned64(sa) == a
    assert hamming(sa, sb) == hamming(a, b) == hamming(a, sb) == bin(a ^ b).count("1")


def test_the_window_finds_the_same_photo_then_the_closest_then_the_newest() -> None:
    base = to_signed64(0xF0F0_F0F0_F0F0_F0F0)
    window = HashWindow()
    for asset_id, phash, sha in (
        (1, to_signed64(0x0F0F_0F0F_0F0F_0F0F), "far"),
        (2, base ^ 0b11, "two"),
        (3, base ^ 0b1000, "one"),
        (4, base ^ (0b11 << 40), "also-two"),
        (5, base ^ 0b1, "one-newer"),
    ):
        window.add(asset_id, phash, sha)
    assert window.best_match("two", 0, max_distance=0) == (-1, 2)  # same file, whatever hash
    assert window.best_match("new", base, max_distance=2) == (1, 5)  # closest, newest of equals
    assert window.best_match("new", base, max_distance=0) is None
    assert window.best_match("new", base, max_distance=64) == (1, 5)  # wide: scanned
    window.remove(5)
    window.remove(3)
    assert window.best_match("new", base, max_distance=2) == (2, 4)
    assert window.best_match("one-newer", base, max_distance=8) == (2, 4)  # gone by sha too
    assert HashWindow().best_match("x", base, max_distance=10) is None


def test_the_window_keeps_the_newest_and_knows_what_is_above_an_id() -> None:
    window = HashWindow()
    for asset_id in (5, 1, 9, 3, 7):
        window.add(asset_id, asset_id * 1_000_003, f"sha{asset_id}")
    window.add(9, 42, "changed")  # a reused id: replaced, not doubled
    assert window.ids_above(0) == [1, 3, 5, 7, 9]
    assert window.row(9) == (42, "changed") and window.best_match("sha9", 0, 0) is None
    assert window.ids_above(4) == [5, 7, 9]
    window.keep_newest(3)
    assert window.ids_above(0) == [5, 7, 9] and 1 not in window and window.row(1) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(u64, st.integers(0, 12)), min_size=1, max_size=300),
    u64,
    st.sampled_from([0, 3, 4, 8, 9, 12, 30]),
    st.randoms(use_true_random=False),
)
def test_the_window_finds_what_comparing_with_every_hash_finds(
    seeds: list[tuple[int, int]], query: int, max_distance: int, rng: random.Random
) -> None:
    """The banded lookup misses nothing a scan finds: every match, best first, is found."""
    window = HashWindow()
    hashes = {}
    for asset_id, (seed, flips) in enumerate(seeds, start=1):
        near = query if seed % 2 else seed  # half of them close to the query
        for bit in rng.sample(range(64), flips):
            near ^= 1 << bit
        hashes[asset_id] = to_signed64(near)
        window.add(asset_id, hashes[asset_id], f"sha{asset_id}")
    while True:
        scanned = [
            (hamming(query, phash), asset_id)
            for asset_id, phash in hashes.items()
            if hamming(query, phash) <= max_distance
        ]
        expected = min(scanned, key=lambda hit: (hit[0], -hit[1])) if scanned else None
        assert window.best_match("none", query, max_distance) == expected
        if expected is None:
            break
        window.remove(expected[1])  # then the next best, until none is left
        del hashes[expected[1]]


def test_a_match_that_differs_in_every_band_is_found() -> None:
    window = HashWindow()
    rng = random.Random(8)
    for asset_id in range(1, 500):  # enough hashes that the bands are searched, not scanned
        window.add(asset_id, to_signed64(rng.getrandbits(64) | 1 << 63), f"sha{asset_id}")
    spread = sum(1 << bit for bit in (0, 1, 13, 14, 26, 27, 39, 52))  # 8 bits, every band
    window.add(500, spread, "spread")
    assert window.best_match("new", 0, max_distance=8) == (8, 500)
