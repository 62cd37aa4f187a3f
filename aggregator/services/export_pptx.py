"""PowerPoint export (python-pptx): one slide per photo with its caption and speaker notes,
plus the intro, moment-of-silence, QR and closing slides of the event's programme.

Captions are real text in Arial (present wherever PowerPoint runs, with Cyrillic, the Kazakh
letters and Hebrew); right-to-left paragraphs get PowerPoint's own ``rtl`` flag so it lays
them out itself. Speaker notes carry the full caption, the alt text and where the photo was
shared, for whoever presents.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
from pptx.util import Emu, Pt

from aggregator.services.export_pdf import export_program
from aggregator.services.exports import ExportContext
from aggregator.services.slideshows import Slide
from aggregator.services.slideshows_document import ProgramSlide, caption, slide_alt

WIDTH: Final = Emu(12_192_000)  # 13.333 in: PowerPoint's widescreen
HEIGHT: Final = Emu(6_858_000)  # 7.5 in
MARGIN: Final = Emu(360_000)
FONT: Final = "Arial"
_rgb = cast(Callable[[int, int, int], RGBColor], RGBColor)  # python-pptx has no type hints
COLORS: Final = {
    "dark": {
        "bg": _rgb(0, 0, 0),
        "fg": _rgb(242, 239, 232),
        "muted": _rgb(185, 179, 166),
    },
    "light": {
        "bg": _rgb(255, 255, 255),
        "fg": _rgb(29, 27, 24),
        "muted": _rgb(90, 85, 76),
    },
}


def _paragraph(
    frame: Any,
    text: str,
    *,
    size: int,
    color: RGBColor,
    bold: bool = False,
    rtl: bool = False,
    align: Any = None,
    first: bool = False,
) -> None:
    paragraph = frame.paragraphs[0] if first else frame.add_paragraph()
    run = paragraph.add_run()
    run.text = text
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.name = FONT
    run.font.color.rgb = color
    if rtl:
        paragraph._p.get_or_add_pPr().set("rtl", "1")  # PowerPoint lays out RTL itself
    paragraph.alignment = align if align is not None else (PP_ALIGN.RIGHT if rtl else PP_ALIGN.LEFT)


class DeckWriter:
    """Adds programme slides to a presentation in the event's theme."""

    def __init__(self, ctx: ExportContext) -> None:
        self.ctx = ctx
        self.deck = Presentation()
        self.deck.slide_width = WIDTH
        self.deck.slide_height = HEIGHT
        self.layout = self.deck.slide_layouts[6]  # blank
        self.colors = COLORS.get(ctx.show["theme"], COLORS["dark"])
        self.fields = ctx.show["captions"]

    def _slide(self) -> Any:
        slide = self.deck.slides.add_slide(self.layout)
        fill = slide.background.fill
        fill.solid()
        fill.fore_color.rgb = self.colors["bg"]
        return slide

    def photo(self, item: Slide) -> None:
        """A photo slide: picture fitted above the caption box; notes with everything."""
        slide = self._slide()
        parts = caption(item, self.fields)
        who = " · ".join(p for p in (parts["name"], parts["city"]) if p)
        has_caption = bool(who or parts["message"] or parts["source"])
        band = Emu(int(HEIGHT * 0.2)) if has_caption else Emu(0)
        box_w, box_h = WIDTH - 2 * MARGIN, HEIGHT - band - MARGIN
        scale = min(box_w / max(1, item.width), box_h / max(1, item.height))
        pic_w, pic_h = Emu(int(item.width * scale)), Emu(int(item.height * scale))
        with self.ctx.storage.open(item.keys["slide"]) as handle:
            picture = slide.shapes.add_picture(
                io.BytesIO(handle.read()),
                Emu(int((WIDTH - pic_w) / 2)),
                Emu(int(MARGIN / 2 + (box_h - pic_h) / 2)),
                pic_w,
                pic_h,
            )
        alt = slide_alt(item, self.ctx.gettext)
        picture._element.nvPicPr.cNvPr.set("descr", alt)  # alt text for screen readers
        if has_caption:
            box = slide.shapes.add_textbox(
                MARGIN, HEIGHT - band, WIDTH - 2 * MARGIN, band - MARGIN // 3
            )
            frame = box.text_frame
            frame.word_wrap = True
            frame.vertical_anchor = MSO_ANCHOR.TOP
            rtl = parts["dir"] == "rtl"
            first = True
            if who:
                _paragraph(
                    frame, who, size=22, color=self.colors["fg"], bold=True, rtl=rtl, first=first
                )
                first = False
            if parts["message"]:
                _paragraph(
                    frame, parts["message"], size=16, color=self.colors["fg"], rtl=rtl, first=first
                )
                first = False
            if parts["source"]:
                _paragraph(frame, parts["source"], size=11, color=self.colors["muted"], first=first)
        notes = [
            " · ".join(p for p in (item.name, item.city) if p),
            item.message,
            f"{self.ctx.gettext('Description')}: {alt}",
            item.source,
            item.source_url or "",
            item.posted_at.date().isoformat(),
        ]
        slide.notes_slide.notes_text_frame.text = "\n".join(n for n in notes if n)

    def text_slide(self, step: ProgramSlide) -> None:
        """Intro, closing, silence or QR slide, centred."""
        slide = self._slide()
        top = Emu(int(HEIGHT * (0.06 if step.kind == "qr" else 0.3)))
        height = Emu(int(HEIGHT * (0.2 if step.kind == "qr" else 0.4)))
        box = slide.shapes.add_textbox(MARGIN * 2, top, WIDTH - 4 * MARGIN, height)
        frame = box.text_frame
        frame.word_wrap = True
        rtl = any("\u0590" <= ch <= "\u08ff" for ch in step.title + step.text)
        _paragraph(
            frame,
            step.title,
            size=40,
            color=self.colors["fg"],
            rtl=rtl,
            align=PP_ALIGN.CENTER,
            first=True,
        )
        if step.text:
            _paragraph(
                frame,
                step.text,
                size=22,
                color=self.colors["muted"],
                rtl=rtl,
                align=PP_ALIGN.CENTER,
            )
        if step.kind == "silence":
            seconds = int(step.extra.get("seconds") or 60)
            _paragraph(
                frame,
                f"{seconds // 60}:{seconds % 60:02d}",
                size=28,
                color=self.colors["muted"],
                align=PP_ALIGN.CENTER,
            )
        if step.kind == "qr":
            from segno import make

            url = str(step.extra["url"])
            buffer = io.BytesIO()
            make(url, error="m").save(buffer, kind="png", scale=10, border=2)
            buffer.seek(0)
            size = Emu(int(HEIGHT * 0.45))
            slide.shapes.add_picture(
                buffer, Emu(int((WIDTH - size) / 2)), Emu(int(HEIGHT * 0.3)), size, size
            )
            below = slide.shapes.add_textbox(
                MARGIN * 2, Emu(int(HEIGHT * 0.8)), WIDTH - 4 * MARGIN, Emu(int(HEIGHT * 0.1))
            )
            _paragraph(
                below.text_frame,
                url,
                size=14,
                color=self.colors["muted"],
                align=PP_ALIGN.CENTER,
                first=True,
            )
        slide.notes_slide.notes_text_frame.text = "\n".join(p for p in (step.title, step.text) if p)


def write_pptx(ctx: ExportContext, slides: list[Slide], path: Path) -> None:
    """Write the presentation for ``slides`` to ``path``."""
    writer = DeckWriter(ctx)
    steps = export_program(ctx, slides)
    total = max(1, len(steps))
    for done, step in enumerate(steps, start=1):
        if step.kind == "photo" and step.photo is not None:
            writer.photo(step.photo)
        else:
            writer.text_slide(step)
        ctx.progress(done / total * 0.9)
    writer.deck.core_properties.title = f"{ctx.event.name} — {ctx.title}"
    writer.deck.save(str(path))
