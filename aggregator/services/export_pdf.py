"""PDF export: one 16:9 landscape page per slide, photo above its caption.

Made with reportlab and DejaVu Sans (Latin, Cyrillic with the Kazakh letters, Hebrew). The
text is real PDF text (searchable, sharp when printed); reportlab draws glyphs left to right,
so right-to-left lines are put into visual order with python-bidi first. JPEG slide images are
embedded as they are (no re-encoding). Page colours follow the event's theme.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Final

from bidi import get_display
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from aggregator.media.text import find_font
from aggregator.services.exports import ExportContext
from aggregator.services.slideshows import Slide
from aggregator.services.slideshows_document import ProgramSlide, caption, program

PAGE: Final = (960.0, 540.0)  # 13.33 × 7.5 in, the widescreen slide size
MARGIN: Final = 28.0
REGULAR: Final = "WR-DejaVuSans"
BOLD: Final = "WR-DejaVuSans-Bold"
THEMES: Final = {
    "dark": {"bg": (0, 0, 0), "fg": (0.95, 0.94, 0.91), "muted": (0.72, 0.70, 0.65)},
    "light": {"bg": (1, 1, 1), "fg": (0.11, 0.10, 0.09), "muted": (0.35, 0.33, 0.30)},
}


@functools.cache
def register_fonts() -> None:
    """Register DejaVu Sans regular and bold with reportlab (once per process)."""
    pdfmetrics.registerFont(TTFont(REGULAR, str(find_font(False))))
    pdfmetrics.registerFont(TTFont(BOLD, str(find_font(True))))


def wrap(text: str, font: str, size: float, width: float, max_lines: int = 0) -> list[str]:
    """Greedy word wrap in logical order; the last kept line ends with … when cut."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            attempt = f"{line} {word}" if line else word
            if line and pdfmetrics.stringWidth(attempt, font, size) > width:
                lines.append(line)
                line = word
            else:
                line = attempt
        lines.append(line)
    lines = [line for line in lines if line] or []
    if max_lines and len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(" .,;:") + "…"
    return lines


def visual(line: str, direction: str) -> str:
    """A line in the order reportlab must draw it."""
    if direction == "rtl":
        return str(get_display(line, base_dir="R"))
    return str(get_display(line)) if _has_rtl(line) else line


def _has_rtl(text: str) -> bool:
    return any("\u0590" <= ch <= "\u08ff" or "\ufb1d" <= ch <= "\ufdff" for ch in text)


class PageWriter:
    """Draws programme slides on a reportlab canvas in the event's theme."""

    def __init__(self, canvas: Canvas, ctx: ExportContext) -> None:
        self.canvas = canvas
        self.ctx = ctx
        self.colors = THEMES.get(ctx.show["theme"], THEMES["dark"])
        self.fields = ctx.show["captions"]
        self._qr: ImageReader | None = None

    def background(self) -> None:
        """Fill the page with the theme's background colour."""
        self.canvas.setFillColorRGB(*self.colors["bg"])
        self.canvas.rect(0, 0, PAGE[0], PAGE[1], stroke=0, fill=1)

    def lines(
        self,
        lines: list[str],
        *,
        font: str,
        size: float,
        y: float,
        direction: str,
        color: str = "fg",
        center: bool = False,
        leading: float = 1.3,
    ) -> float:
        """Draw lines downward from baseline y; returns the baseline after the last line."""
        self.canvas.setFont(font, size)
        self.canvas.setFillColorRGB(*self.colors[color])
        for line in lines:
            shown = visual(line, direction)
            if center:
                self.canvas.drawCentredString(PAGE[0] / 2, y, shown)
            elif direction == "rtl":
                self.canvas.drawRightString(PAGE[0] - MARGIN, y, shown)
            else:
                self.canvas.drawString(MARGIN, y, shown)
            y -= size * leading
        return y

    def photo(self, slide: Slide) -> None:
        """The photo fitted above its caption band."""
        parts = caption(slide, self.fields)
        width = PAGE[0] - 2 * MARGIN
        who = " · ".join(p for p in (parts["name"], parts["city"]) if p)
        message = wrap(parts["message"], REGULAR, 15, width, max_lines=3)
        source = parts["source"]
        band = 0.0
        if who:
            band += 22 * 1.3
        band += len(message) * 15 * 1.35
        if source:
            band += 11 * 1.4
        band = band + MARGIN * 0.8 if band else 0.0
        top, bottom = PAGE[1] - MARGIN * 0.6, band + MARGIN * 0.4
        box_w, box_h = PAGE[0] - 2 * MARGIN, max(40.0, top - bottom)
        scale = min(box_w / max(1, slide.width), box_h / max(1, slide.height))
        draw_w, draw_h = slide.width * scale, slide.height * scale
        x, y = (PAGE[0] - draw_w) / 2, bottom + (box_h - draw_h) / 2
        path = self.ctx.storage.path(slide.keys["slide"])
        self.canvas.drawImage(str(path), x, y, draw_w, draw_h)
        baseline = band - MARGIN * 0.4 - 18
        direction = parts["dir"]
        if who:
            baseline = self.lines([who], font=BOLD, size=20, y=baseline, direction=direction)
        if message:
            baseline = self.lines(
                message, font=REGULAR, size=15, y=baseline, direction=direction, leading=1.35
            )
        if source:
            self.lines([source], font=REGULAR, size=11, y=baseline, direction="ltr", color="muted")

    def text_slide(self, step: ProgramSlide) -> None:
        """Intro, closing, silence or QR page, centred."""
        width = PAGE[0] - 4 * MARGIN
        title = wrap(step.title, REGULAR, 40, width, max_lines=3)
        body = wrap(step.text, REGULAR, 22, width, max_lines=8)
        height = len(title) * 40 * 1.25 + len(body) * 22 * 1.4
        if step.kind == "qr":
            height += 220
        y = PAGE[1] / 2 + height / 2 - 32
        direction = "rtl" if _has_rtl(step.title + step.text) else "ltr"
        y = self.lines(
            title, font=REGULAR, size=40, y=y, direction=direction, center=True, leading=1.25
        )
        y = self.lines(
            body,
            font=REGULAR,
            size=22,
            y=y - 8,
            direction=direction,
            center=True,
            color="muted",
            leading=1.4,
        )
        if step.kind == "silence":
            seconds = int(step.extra.get("seconds") or 60)
            self.lines(
                [f"{seconds // 60}:{seconds % 60:02d}"],
                font=REGULAR,
                size=28,
                y=y - 20,
                direction="ltr",
                center=True,
                color="muted",
            )
        if step.kind == "qr":
            size = 190.0
            self.canvas.drawImage(
                self.qr_image(str(step.extra["url"])), (PAGE[0] - size) / 2, y - size, size, size
            )
            self.lines(
                [str(step.extra["url"])],
                font=REGULAR,
                size=14,
                y=y - size - 22,
                direction="ltr",
                center=True,
                color="muted",
            )

    def qr_image(self, url: str) -> ImageReader:
        """The QR code as an image (made once per export)."""
        if self._qr is None:
            from PIL import Image
            from segno import make

            buffer = io.BytesIO()
            make(url, error="m").save(buffer, kind="png", scale=8, border=2)
            buffer.seek(0)
            self._qr = ImageReader(Image.open(buffer).convert("RGB"))
        return self._qr


def export_program(ctx: ExportContext, slides: list[Slide]) -> list[ProgramSlide]:
    """The pages/slides of a PDF or PPTX export: intro, silence, photos, QR, closing."""
    qr = {"url": ctx.upload_url}
    strings = {"silence": ctx.gettext("A moment of silence"), "qr": ctx.gettext("Add your photo")}
    return program(slides, ctx.show, qr=qr, strings=strings)


def write_pdf(ctx: ExportContext, slides: list[Slide], path: Path) -> None:
    """Write one page per programme slide to ``path``."""
    register_fonts()
    steps = export_program(ctx, slides)
    canvas = Canvas(str(path), pagesize=PAGE, pageCompression=1)
    canvas.setTitle(f"{ctx.event.name} — {ctx.title}")
    canvas.setAuthor(ctx.title)
    canvas.setCreator("We Remember")
    writer = PageWriter(canvas, ctx)
    total = max(1, len(steps))
    for done, step in enumerate(steps, start=1):
        writer.background()
        if step.kind == "photo" and step.photo is not None:
            writer.photo(step.photo)
        else:
            writer.text_slide(step)
        canvas.showPage()
        ctx.progress(done / total * 0.97)
    canvas.save()
