"""Text on images (title cards, posters): Latin, Cyrillic with Kazakh letters, Hebrew RTL.

With libraqm (Pillow's complex layout) the text is shaped and ordered by HarfBuzz and FriBiDi;
without it, python-bidi reorders each line into visual order and Pillow's basic layout draws it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final, Literal

from PIL import Image, ImageDraw, ImageFont, features

Engine = Literal["raqm", "basic"]
Color = str | tuple[int, int, int] | tuple[int, int, int, int]

_FONT_FILES: Final = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}
FONT_DIRS: Final = (
    Path(__file__).resolve().parent.parent / "static" / "fonts",  # shipped with the project
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian/Ubuntu fonts-dejavu-core
    Path("/usr/share/fonts/dejavu"),  # Fedora
    Path("/usr/share/fonts/TTF"),  # Arch
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
)


class FontNotFoundError(FileNotFoundError):
    """DejaVu Sans is not installed; the message says how to install it."""


def find_font(bold: bool = False) -> Path:
    """Path of DejaVu Sans (bold or regular), which covers Latin, Cyrillic, Kazakh and Hebrew."""
    name = _FONT_FILES[bold]
    for directory in FONT_DIRS:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in FONT_DIRS)
    raise FontNotFoundError(
        f"Font {name} not found (searched {searched}). Install it with "
        "'apt-get install fonts-dejavu-core' or copy it to aggregator/static/fonts/."
    )


def default_engine() -> Engine:
    """'raqm' when Pillow has libraqm with FriBiDi, else 'basic' (python-bidi reordering)."""
    return (
        "raqm" if features.check_feature("raqm") and features.check_feature("fribidi") else "basic"
    )


@functools.lru_cache(maxsize=32)
def load_font(
    size: int, *, bold: bool = False, font_path: Path | None = None, engine: Engine | None = None
) -> ImageFont.FreeTypeFont:
    """A cached FreeType font at size (pixels) with the chosen layout engine."""
    engine = engine or default_engine()
    layout = ImageFont.Layout.RAQM if engine == "raqm" else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(font_path or find_font(bold)), size, layout_engine=layout)


def visual_order(text: str) -> str:
    """Each line reordered from logical to display order (only needed without raqm)."""
    from bidi import get_display

    return "\n".join(str(get_display(line)) for line in text.split("\n"))


def _prepared(text: str, font: ImageFont.FreeTypeFont) -> str:
    return text if font.layout_engine == ImageFont.Layout.RAQM else visual_order(text)


def text_bbox(
    text: str,
    *,
    size: int,
    bold: bool = False,
    font_path: Path | None = None,
    align: Literal["left", "center", "right"] = "left",
    engine: Engine | None = None,
) -> tuple[int, int, int, int]:
    """Ink box (left, top, right, bottom) of text drawn at the origin with anchor 'la'."""
    font = load_font(size, bold=bold, font_path=font_path, engine=engine)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.multiline_textbbox((0, 0), _prepared(text, font), font=font, align=align)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def text_width(text: str, *, size: int, bold: bool = False, font_path: Path | None = None) -> float:
    """Advance width of one line, for wrapping and centring."""
    font = load_font(size, bold=bold, font_path=font_path)
    return float(font.getlength(_prepared(text, font)))


def wrap_text(
    text: str, *, size: int, max_width: int, bold: bool = False, font_path: Path | None = None
) -> list[str]:
    """Greedy word wrap into lines no wider than max_width (a single long word stays whole)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            attempt = f"{current} {word}" if current else word
            fits = text_width(attempt, size=size, bold=bold, font_path=font_path) <= max_width
            if current and not fits:
                lines.append(current)
                current = word
            else:
                current = attempt
        lines.append(current)
    return lines


def draw_text(
    image: Image.Image | ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    *,
    size: int,
    fill: Color = (0, 0, 0),
    bold: bool = False,
    font_path: Path | None = None,
    anchor: str = "la",
    align: Literal["left", "center", "right"] = "left",
    engine: Engine | None = None,
) -> None:
    """Draw text at xy; right-to-left scripts come out right-to-left with either engine."""
    draw = ImageDraw.Draw(image) if isinstance(image, Image.Image) else image
    font = load_font(size, bold=bold, font_path=font_path, engine=engine)
    prepared = _prepared(text, font)
    if "\n" in prepared:
        draw.multiline_text(xy, prepared, fill=fill, font=font, anchor=anchor, align=align)
    else:
        draw.text(xy, prepared, fill=fill, font=font, anchor=anchor)


def render_text(
    text: str,
    *,
    size: int,
    fill: Color = (0, 0, 0, 255),
    bold: bool = False,
    font_path: Path | None = None,
    padding: int = 0,
    align: Literal["left", "center", "right"] = "center",
    engine: Engine | None = None,
) -> Image.Image:
    """Text on a transparent RGBA canvas cropped to its ink box plus padding."""
    left, top, right, bottom = text_bbox(
        text, size=size, bold=bold, font_path=font_path, align=align, engine=engine
    )
    width = max(1, right - left + 2 * padding)
    height = max(1, bottom - top + 2 * padding)
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw_text(
        canvas,
        (padding - left, padding - top),
        text,
        size=size,
        fill=fill,
        bold=bold,
        font_path=font_path,
        align=align,
        engine=engine,
    )
    return canvas
