"""Hamming distance on signed 64-bit hashes and the near-duplicate filter."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregator.media.dedup import (
    hamming,
    near_duplicates,
    to_signed64,
    to_unsigned64,
)

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


def test_near_duplicates_sorted_by_distance_and_filtered() -> None:
    base = to_signed64(0xF0F0_F0F0_F0F0_F0F0)
    candidates = [
        ("far", to_signed64(0x0F0F_0F0F_0F0F_0F0F)),
        ("two", base ^ 0b11),
        ("same", base),
        ("one", base ^ 0b1000),
        ("also-two", base ^ (0b11 << 40)),
    ]
    assert near_duplicates(base, candidates, max_distance=2) == ["same", "one", "two", "also-two"]
    assert near_duplicates(base, candidates, max_distance=0) == ["same"]
    assert near_duplicates(base, iter(candidates), max_distance=64)[-1] == "far"
    assert near_duplicates(base, [], max_distance=10) == []
