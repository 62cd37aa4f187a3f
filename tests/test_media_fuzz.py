"""Bounded mutation fuzzing (bit flips, truncation, splices): only a result or ImageRejected."""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.media import ImageRejected, ProcessedImage, process_image
from tests import media_samples as samples


@functools.cache
def seeds() -> tuple[bytes, ...]:
    im = samples.photo(48, 32)
    return (
        samples.encode(im, "JPEG", quality=80),
        samples.oriented(6),
        samples.encode(im, "PNG"),
        samples.encode(im.convert("P"), "GIF"),
        samples.encode(im, "WEBP", quality=80),
        samples.encode(im, "WEBP", lossless=True),
        samples.ODD_VALID["animated.gif"](),
        samples.ODD_VALID["animated.png"](),
        samples.ODD_VALID["avif"](),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):  # overwrite a run with an interesting value (sizes, lengths)
        pos = draw(st.integers(0, max(0, len(data) - 4)))
        data[pos : pos + 4] = draw(
            st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xff"])
        )
    if draw(st.booleans()):  # splice: duplicate or drop a slice
        a = draw(st.integers(0, len(data)))
        b = draw(st.integers(a, min(len(data), a + 512)))
        data = data[:b] + data[a:b] + data[b:] if draw(st.booleans()) else data[:a] + data[b:]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutations_give_a_result_or_a_clean_rejection(data: bytes) -> None:
    try:
        result = process_image(data)
    except ImageRejected as exc:
        assert exc.code in {
            "too_large",
            "too_many_pixels",
            "unsupported_format",
            "corrupt",
            "empty",
            "bad_dimensions",
        }
        return
    assert isinstance(result, ProcessedImage)
    assert result.slide.data.startswith(b"\xff\xd8")
