"""Poster export: every approved photo in one mosaic under the campaign's title.

A 6000 × 4243 px landscape image (the A-paper ratio; A2 at about 250 dpi): a title band with
the campaign's name, the event and its date, then a grid of square crops sized so all photos
fit. Written as PDF (the image on one A2 page) unless the output name ends in .jpg or .png.
Text is drawn with ``aggregator.media.text`` so Cyrillic, Kazakh and Hebrew titles render.
"""

from __future__ import annotations

import io
import math
import secrets
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps

from aggregator.media.text import draw_text, text_width
from aggregator.services.exports import ExportContext
from aggregator.services.slideshows import Slide

SIZE: Final = (6000, 4243)
A2_POINTS: Final = (1683.8, 1190.6)
MARGIN: Final = 120
GAP: Final = 6
TITLE_BAND: Final = 560
THUMB_SIDE: Final = 480  # the stored thumb's longest side; larger cells use the slide image
COLORS: Final = {
    "dark": {"bg": (0, 0, 0), "fg": (242, 239, 232), "muted": (185, 179, 166)},
    "light": {"bg": (255, 255, 255), "fg": (29, 27, 24), "muted": (90, 85, 76)},
}


def grid(count: int, width: int, height: int, gap: int = GAP) -> tuple[int, int, int]:
    """(columns, rows, cell side) of the largest square cells that fit ``count`` items."""
    if count <= 0:
        return 0, 0, 0
    best = (1, count, 0)
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        side = min((width - gap * (cols - 1)) // cols, (height - gap * (rows - 1)) // rows)
        if side > best[2]:
            best = (cols, rows, side)
    return best


def fit_title(text: str, *, size: int, max_width: int, bold: bool = True) -> int:
    """The largest font size ≤ size at which ``text`` fits on one line."""
    while size > 24 and text_width(text, size=size, bold=bold) > max_width:
        size = int(size * 0.9)
    return size


def render_poster(ctx: ExportContext, slides: list[Slide]) -> Image.Image:
    """The poster as an RGB image."""
    colors = COLORS.get(ctx.show["theme"], COLORS["dark"])
    poster = Image.new("RGB", SIZE, colors["bg"])
    width = SIZE[0] - 2 * MARGIN
    title = ctx.title
    size = fit_title(title, size=200, max_width=width)
    draw_text(
        poster,
        (SIZE[0] / 2, MARGIN + 40),
        title,
        size=size,
        fill=colors["fg"],
        bold=True,
        anchor="mt",
    )
    when = ctx.event.starts_at.date().isoformat() if ctx.event.starts_at else ""
    subtitle = " · ".join(p for p in (ctx.event.name, when) if p)
    sub_size = fit_title(subtitle, size=90, max_width=width, bold=False)
    draw_text(
        poster,
        (SIZE[0] / 2, MARGIN + 60 + size * 1.25),
        subtitle,
        size=sub_size,
        fill=colors["muted"],
        anchor="mt",
    )
    top = MARGIN + TITLE_BAND
    area_w, area_h = width, SIZE[1] - top - MARGIN
    cols, rows, side = grid(len(slides), area_w, area_h)
    if not slides:
        draw_text(
            poster,
            (SIZE[0] / 2, top + area_h / 2),
            ctx.gettext("Photos will appear here as they are shared."),
            size=90,
            fill=colors["muted"],
            anchor="mm",
        )
        return poster
    used_w = cols * side + (cols - 1) * GAP
    used_h = rows * side + (rows - 1) * GAP
    left, top = MARGIN + (area_w - used_w) // 2, top + (area_h - used_h) // 2
    style = "thumb" if side <= THUMB_SIDE else "slide"
    total = len(slides)
    for index, slide in enumerate(slides):
        key = slide.keys.get(style) or slide.keys["slide"]
        with ctx.storage.open(key) as handle, Image.open(handle) as image:
            image.draft("RGB", (side, side))  # JPEG decodes at a reduced scale: much faster
            cell = ImageOps.fit(image.convert("RGB"), (side, side), Image.Resampling.LANCZOS)
        row, col = divmod(index, cols)
        poster.paste(cell, (left + col * (side + GAP), top + row * (side + GAP)))
        ctx.progress((index + 1) / total * 0.85)
    return poster


def write_poster(ctx: ExportContext, slides: list[Slide], path: Path) -> None:
    """Write the poster to ``path``: JPEG or PNG by its suffix, otherwise a one-page PDF."""
    poster = render_poster(ctx, slides)
    suffix = path.suffix.lower()
    if suffix in {".jpg", ".jpeg"}:
        poster.save(path, "JPEG", quality=90, dpi=(250, 250))
        return
    if suffix == ".png":
        poster.save(path, "PNG", dpi=(250, 250))
        return
    from reportlab.pdfgen.canvas import Canvas

    # reportlab embeds a JPEG file as it is; from pixels it would write ~70 MB of Flate data.
    image_path = path.with_name(f".poster-{secrets.token_hex(6)}.jpg")
    try:
        buffer = io.BytesIO()
        poster.save(buffer, "JPEG", quality=90)
        image_path.write_bytes(buffer.getvalue())
        canvas = Canvas(str(path), pagesize=A2_POINTS)
        canvas.setTitle(ctx.title)
        canvas.setCreator("We Remember")
        canvas.drawImage(str(image_path), 0, 0, A2_POINTS[0], A2_POINTS[1])
        canvas.showPage()
        canvas.save()
    finally:
        image_path.unlink(missing_ok=True)
