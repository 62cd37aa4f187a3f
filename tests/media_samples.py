"""Generators of good, odd and hostile image files for the media tests (security.md part b)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageStat

CANARY = b"CANARY"

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# --- byte-level helpers (stdlib only, as in security.md (b)) --------------------------------


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(
    w: int,
    h: int,
    depth: int = 8,
    ctype: int = 2,
    extra: bytes = b"",
    idat: bytes | None = None,
) -> bytes:
    if idat is None:
        idat = zlib.compress(b"\0")
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zeros_deflate(n: int) -> bytes:
    comp = zlib.compressobj(9)
    out = []
    step = 1 << 20
    zero = bytes(step)
    while n > 0:
        out.append(comp.compress(zero[: min(step, n)]))
        n -= step
    out.append(comp.flush())
    return b"".join(out)


def gif(big_w: int, big_h: int, frames: int = 1, fw: int = 1, fh: int = 1) -> bytes:
    frame = (
        b"\x21\xf9\x04\x00\x01\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, fw, fh, 0x80)
        + b"\xff\x00\x00\x00\x00\x00"
        + b"\x02\x02\x44\x01\x00"
    )
    return b"GIF89a" + struct.pack("<HHBBB", big_w, big_h, 0, 0, 0) + frame * frames + b";"


# --- images saved by Pillow -----------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def quadrants(w: int = 64, h: int = 32) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    im = Image.new("RGB", (w, h), WHITE)
    im.paste(RED, (0, 0, w // 2, h // 2))
    im.paste(GREEN, (w // 2, 0, w, h // 2))
    im.paste(BLUE, (0, h // 2, w // 2, h))
    return im


# Orientation n is displayed by applying TRANSPOSE[n]; we store the inverse of that.
_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def oriented(orientation: int, fmt: str = "JPEG", w: int = 64, h: int = 32) -> bytes:
    """The quadrant image stored so that it only looks right once Orientation is applied."""
    im = quadrants(w, h)
    if orientation in _INVERSE:
        im = im.transpose(_INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    if fmt == "HEIF":
        return heic(im, exif=exif.tobytes())
    kw: dict[str, Any] = {"exif": exif}
    if fmt in ("JPEG", "AVIF"):
        kw["quality"] = 95
    elif fmt == "WEBP":
        kw["lossless"] = True
    return encode(im, fmt, **kw)


def heic(im: Image.Image, **kw: Any) -> bytes:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=90, **kw)
    return buf.getvalue()


def photo(w: int = 400, h: int = 300, seed: int = 0) -> Image.Image:
    """A small smooth-with-noise picture, a stand-in for a phone photo."""
    import random

    base = Image.linear_gradient("L").resize((w, h))
    noise = Image.frombytes("L", (w, h), random.Random(seed).randbytes(w * h))
    return Image.merge("RGB", (base, noise, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def scene(w: int = 400, h: int = 300, seed: int = 0) -> Image.Image:
    """A picture with large shapes (structure that a perceptual hash can see)."""
    import random

    from PIL import ImageDraw

    rnd = random.Random(seed)
    im = Image.new("RGB", (w, h), tuple(rnd.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x, y = rnd.randrange(w), rnd.randrange(h)
        r = rnd.randrange(min(w, h) // 8, min(w, h) // 2)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rnd.randrange(256) for _ in range(3)))
    return im


def srgb_like_icc(description: bytes = b"test profile", *, swap_red_green: bool = False) -> bytes:
    """A minimal ICC v2 RGB display profile (sRGB primaries, gamma 2.2), optionally with the
    red and green primaries swapped so that conversion visibly changes the pixels."""
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    if swap_red_green:
        red, green = green, red

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    # textDescriptionType: ASCII part, then empty Unicode and ScriptCode parts.
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(description) + 1) + description + b"\0" * 79
    desc += b"\0" * (-len(desc) % 4)
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\0\0\0\0" + b"none\0\0\0\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = b""
    body = b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acspAPPL"
        + b"\0" * 24  # flags, manufacturer, model, attributes, rendering intent
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"lcms"
        + b"\0" * 44  # profile id and reserved
    )
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + body


# --- checks --------------------------------------------------------------------------------


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def mean(im: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(im.convert("RGB").crop(box)).mean)


def close(a: tuple[float, ...], b: tuple[int, ...], tol: float = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --- the security.md (b) corpus ---------------------------------------------------------------


def gps_exif_jpeg() -> bytes:
    ex = Image.Exif()
    ex[0x0112] = 6
    ex[0x010F] = "CanaryCam"
    ex[0x8825] = {1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 0.0)}
    return encode(
        quadrants(),
        "JPEG",
        exif=ex,
        comment=b"CANARY<script>",
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>CANARY http://ns.adobe.com/xap/1.0/</x:xmpmeta>",
        icc_profile=srgb_like_icc(b"CANARY icc"),
    )


def bad_exif_jpeg() -> bytes:
    jpg = encode(quadrants(), "JPEG")
    p = (
        b"Exif\0\0"
        + b"II*\0"
        + struct.pack("<I", 8)
        + struct.pack("<H", 1)
        + struct.pack("<HHII", 0x8825, 4, 1, 0xFFFFFF00)
        + struct.pack("<I", 0)
    )
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p + jpg[2:]


def zero_denominator_exif_jpeg() -> bytes:
    """Rational tags with denominator 0 (XResolution, an orientation that is a rational)."""
    ifd = struct.pack("<H", 2)
    ifd += struct.pack("<HHII", 0x011A, 5, 1, 38)  # XResolution -> rational at offset 38
    ifd += struct.pack("<HHII", 0x0112, 5, 1, 38)  # Orientation with the wrong type
    ifd += struct.pack("<I", 0) + struct.pack("<II", 72, 0)
    p = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd
    jpg = encode(quadrants(), "JPEG")
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p + jpg[2:]


def webp_canvas() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN)]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]))
    assert data[12:16] == b"VP8X"
    data[24:27] = (16383 - 1).to_bytes(3, "little")
    data[27:30] = (16383 - 1).to_bytes(3, "little")
    return bytes(data)


def polyglot_gif() -> bytes:
    p = b"<script>alert(document.domain)</script>"
    return gif(1, 1)[:-1] + b"\x21\xfe" + bytes([len(p)]) + p + b"\x00;"


def jpeg_zero_height() -> bytes:
    jpg = bytearray(encode(quadrants(), "JPEG"))
    sof = jpg.index(b"\xff\xc0")
    jpg[sof + 5 : sof + 7] = b"\0\0"
    return bytes(jpg)


def truncated(data: bytes, fraction: float = 0.6) -> bytes:
    return data[: int(len(data) * fraction)]


# Name -> (factory, expected): expected is "ok" or the ImageRejected code.
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "huge_dims.png": (lambda: png(100_000, 100_000), "too_many_pixels"),
    "warn_dims.png": (lambda: png(10_000, 10_000), "too_many_pixels"),
    "zero_height.png": (lambda: png(100_000, 0), "bad_dimensions"),
    "zero_height.jpg": (jpeg_zero_height, "bad_dimensions"),
    "long_side.png": (lambda: png(1, 100_000, ctype=0), "bad_dimensions"),
    "idat_bomb_1bit.png": (
        lambda: png(30_000, 30_000, depth=1, ctype=0, idat=zeros_deflate(30_000 * 3_751)),
        "too_many_pixels",
    ),
    "ztxt_bomb.png": (
        lambda: png(1, 1, extra=chunk(b"zTXt", b"Comment\0\0" + zeros_deflate(200 << 20))),
        "corrupt",
    ),
    "text_flood.png": (
        lambda: png(
            1,
            1,
            extra=b"".join(
                chunk(b"zTXt", b"t%d\0\0" % i + zlib.compress(b"a" * 1_047_552)) for i in range(128)
            ),
        ),
        "corrupt",
    ),
    "truncated.jpg": (lambda: truncated(encode(photo(), "JPEG")), "corrupt"),
    "truncated.png": (lambda: truncated(encode(photo(), "PNG")), "corrupt"),
    "truncated.gif": (lambda: truncated(encode(photo(), "GIF")), "corrupt"),
    "truncated.webp": (lambda: truncated(encode(photo(), "WEBP")), "corrupt"),
    "empty": (lambda: b"", "empty"),
    "one_byte": (lambda: b"\xff", "unsupported_format"),
    "jpeg_magic_only": (lambda: b"\xff\xd8\xff", "corrupt"),
    "png_signature_only": (lambda: b"\x89PNG\r\n\x1a\n", "corrupt"),
    "many_frames.gif": (lambda: gif(1, 1, frames=20_000), "ok"),
    "frame_extent.gif": (lambda: gif(100, 100, 1)[:-1] + gif(1, 1, 1, 60000, 60000)[13:], "ok"),
    "huge_canvas.gif": (lambda: gif(65535, 65535), "too_many_pixels"),
    "first_frame_extent.gif": (lambda: gif(10, 10, 1, 60000, 60000), "too_many_pixels"),
    "webp_canvas.webp": (webp_canvas, "too_many_pixels"),
    "polyglot.gif": (polyglot_gif, "ok"),
    "svg_script.svg": (
        lambda: (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b"<script>alert(2)</script></svg>"
        ),
        "unsupported_format",
    ),
    "html_as.jpg": (
        lambda: b"<!doctype html><html><script>alert(1)</script></html>",
        "unsupported_format",
    ),
    "eps_as.png": (
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n",
        "unsupported_format",
    ),
    "psd": (
        lambda: b"8BPS\x00\x01" + b"\0" * 6 + struct.pack(">HIIHH", 3, 8, 8, 8, 3),
        "unsupported_format",
    ),
    "gps_exif.jpg": (gps_exif_jpeg, "ok"),
    "bad_exif.jpg": (bad_exif_jpeg, "ok"),
    "zero_denominator_exif.jpg": (zero_denominator_exif_jpeg, "ok"),
    "legal_heavy_rgb.png": (lambda: png(6_000, 6_000, idat=zeros_deflate(6_000 * 18_001)), "ok"),
}

# Other Pillow-writable formats that must all be refused.
REFUSED_PILLOW_FORMATS = ("TIFF", "BMP", "ICO", "TGA", "PCX", "SGI", "PPM", "QOI", "DDS")


def refused_format(fmt: str) -> bytes:
    return encode(Image.new("RGB", (8, 8), RED), fmt)


# Name -> factory for odd-but-valid inputs that must all produce a correct sRGB JPEG.
def _cmyk() -> bytes:
    return encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")


def _i16() -> bytes:
    return encode(Image.new("I;16", (40, 30), 32768), "PNG")


def _palette_transparent() -> bytes:
    im = Image.new("P", (40, 30), 0)
    im.putpalette([255, 0, 0, 0, 0, 255])
    im.paste(1, (20, 0, 40, 30))
    return encode(im, "PNG", transparency=0)


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 24), c) for c in (RED, GREEN, BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


ODD_VALID: dict[str, Callable[[], bytes]] = {
    "cmyk.jpg": _cmyk,
    "gray.jpg": lambda: encode(Image.new("L", (40, 30), 90), "JPEG"),
    "progressive.jpg": lambda: encode(photo(), "JPEG", progressive=True),
    "i16.png": _i16,
    "palette_transparent.png": _palette_transparent,
    "rgb_trns.png": lambda: encode(Image.new("RGB", (40, 30), RED), "PNG", transparency=RED),
    "gray_trns.png": lambda: encode(Image.new("L", (40, 30), 10), "PNG", transparency=10),
    "la.png": lambda: encode(Image.new("LA", (40, 30), (200, 128)), "PNG"),
    "rgba.png": lambda: encode(Image.new("RGBA", (40, 30), (255, 0, 0, 0)), "PNG"),
    "bilevel.png": lambda: encode(Image.new("1", (40, 30), 1), "PNG"),
    "one_pixel.png": lambda: encode(Image.new("RGB", (1, 1), RED), "PNG"),
    "extreme_aspect.png": lambda: encode(Image.new("L", (1, 30_000), 200), "PNG"),
    "extreme_aspect_wide.jpg": lambda: encode(Image.new("RGB", (30_000, 2), RED), "JPEG"),
    "animated.gif": lambda: _animated("GIF"),
    "animated.webp": lambda: _animated("WEBP"),
    "animated.png": lambda: _animated("PNG"),
    "lossless.webp": lambda: encode(photo(), "WEBP", lossless=True),
    "lossy.webp": lambda: encode(photo(), "WEBP", quality=80),
    "rgba.webp": lambda: encode(Image.new("RGBA", (40, 30), (0, 0, 255, 128)), "WEBP"),
    "avif": lambda: encode(photo(), "AVIF", quality=70),
    "heic": lambda: heic(photo()),
    "subsampling_444.jpg": lambda: encode(photo(), "JPEG", quality=50, subsampling=0),
}
