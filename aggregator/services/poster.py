"""The printable QR poster of a campaign: A4 PNG and PDF, and the bare QR code as SVG.

The poster carries the campaign's name, the sign text in every language of the campaign, a QR
code to the upload page and the short address for people who type it. Text is drawn with
``aggregator.media.text`` (Cyrillic, Kazakh letters and right-to-left Hebrew); the PDF is one
300 dpi page made by Pillow (no extra dependency).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

import segno
from PIL import Image, ImageDraw

from aggregator import i18n
from aggregator.i18n import N_
from aggregator.media.text import draw_text, wrap_text
from aggregator.models import Campaign
from aggregator.services.campaigns import localized

A4_INCHES: Final = (8.27, 11.69)
PNG_DPI: Final = 150
PDF_DPI: Final = 300
INK: Final = (31, 29, 26)
ACCENT: Final = (107, 78, 46)
MUTED: Final = (93, 88, 80)
PAPER: Final = (255, 255, 255)
DEFAULT_SIGN: Final = "We Remember"
SCAN_TEXT: Final = N_("Scan the code with your phone camera to add your photo")
OR_TEXT: Final = N_("or open this address:")
MODERATED_TEXT: Final = N_("Photos appear only after a person has looked at them.")


@dataclass(frozen=True)
class PosterText:
    """Everything written on a poster, already in each language."""

    name: str
    signs: list[tuple[str, str]]  # (language, sign text), duplicates removed
    scan: list[tuple[str, str]]
    or_address: str
    moderated: str
    url: str
    short_url: str


def upload_url(campaign: Campaign, base_url: str) -> str:
    """The full address of the campaign's upload page."""
    return f"{base_url.rstrip('/')}/c/{campaign.slug}"


def short_address(url: str) -> str:
    """The address as people type it: no scheme, no trailing slash."""
    return url.split("://", 1)[-1].rstrip("/")


def sign_text(campaign: Campaign, lang: str) -> str:
    """The sign text in ``lang``; the default "We Remember" comes from the catalogs."""
    own = localized(campaign, lang).sign_text
    if own == DEFAULT_SIGN:
        return str(i18n.translations(lang).gettext(DEFAULT_SIGN))
    return own


def poster_text(campaign: Campaign, base_url: str) -> PosterText:
    """The poster's texts in the campaign's languages (first language for the name)."""
    languages = list(dict.fromkeys(campaign.languages or ["en"]))
    first = languages[0]
    signs: list[tuple[str, str]] = []
    for lang in languages:
        text = sign_text(campaign, lang)
        if all(text != seen for _l, seen in signs):
            signs.append((lang, text))
    scan: list[tuple[str, str]] = []
    for lang in languages:
        text = str(i18n.translations(lang).gettext(SCAN_TEXT))
        if all(text != seen for _l, seen in scan):
            scan.append((lang, text))
    url = upload_url(campaign, base_url)
    tr = i18n.translations(first)
    return PosterText(
        name=localized(campaign, first).name,
        signs=signs,
        scan=scan,
        or_address=str(tr.gettext(OR_TEXT)),
        moderated=str(tr.gettext(MODERATED_TEXT)),
        url=url,
        short_url=short_address(url),
    )


def qr_image(url: str, size: int) -> Image.Image:
    """A QR code of ``url`` (error correction M, quiet zone included) about ``size`` px wide."""
    code = segno.make(url, error="m", micro=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(1, size // modules), border=4)
    buffer.seek(0)
    with Image.open(buffer) as raw:
        return raw.convert("RGB")


def qr_svg(url: str) -> bytes:
    """The QR code of ``url`` as a standalone SVG (for slides and web pages)."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        buffer, kind="svg", scale=10, border=4, xmldecl=True, svgns=True, title=url
    )
    return buffer.getvalue()


def _block(text: str, size: int, width: int, bold: bool = False) -> tuple[list[str], int]:
    lines = wrap_text(text, size=size, max_width=width, bold=bold)
    line_height = int(size * 1.3)
    return lines, line_height * len(lines)


def render_poster(campaign: Campaign, base_url: str, *, dpi: int = PNG_DPI) -> Image.Image:
    """The A4 portrait poster as an RGB image at ``dpi``."""
    content = poster_text(campaign, base_url)
    width, height = round(A4_INCHES[0] * dpi), round(A4_INCHES[1] * dpi)
    margin = round(width * 0.08)
    inner = width - 2 * margin
    # Shrink everything together until it fits one page (long names, many languages).
    scale = 1.0
    for _attempt in range(12):
        if _height_needed(content, width, inner, scale) <= height - margin:
            break
        scale *= 0.9
    return _draw(content, width, height, margin, inner, scale)


def _sizes(width: int, scale: float) -> dict[str, int]:
    return {
        "name": max(8, int(width * 0.05 * scale)),
        "sign": max(8, int(width * 0.062 * scale)),
        "scan": max(8, int(width * 0.027 * scale)),
        "url": max(8, int(width * 0.036 * scale)),
        "small": max(8, int(width * 0.022 * scale)),
        "qr": int(width * 0.46 * scale),
    }


def _height_needed(content: PosterText, width: int, inner: int, scale: float) -> int:
    sizes = _sizes(width, scale)
    y = round(width * 0.08)
    y += _block(content.name, sizes["name"], inner, bold=True)[1] + sizes["name"]
    for _lang, sign in content.signs:
        y += _block(sign, sizes["sign"], inner, bold=True)[1]
    y += sizes["qr"] + sizes["scan"]
    for _lang, scan in content.scan:
        y += _block(scan, sizes["scan"], inner)[1]
    y += sizes["scan"] + _block(content.or_address, sizes["small"], inner)[1]
    y += _block(content.short_url, sizes["url"], inner, bold=True)[1]
    return y + sizes["small"] + _block(content.moderated, sizes["small"], inner)[1]


def _draw(
    content: PosterText, width: int, height: int, margin: int, inner: int, scale: float
) -> Image.Image:
    sizes = _sizes(width, scale)
    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    centre = width / 2
    y = float(margin)

    def lines(text: str, size: int, fill: tuple[int, int, int], bold: bool = False) -> None:
        nonlocal y
        wrapped, _total = _block(text, size, inner, bold)
        for line in wrapped:
            # A shared baseline keeps scripts without ascenders (Hebrew) evenly spaced.
            draw_text(draw, (centre, y + size), line, size=size, fill=fill, bold=bold, anchor="ms")
            y += int(size * 1.3)

    lines(content.name, sizes["name"], INK, bold=True)
    rule_y = int(y + sizes["name"] * 0.4)
    draw.line([(margin * 2, rule_y), (width - margin * 2, rule_y)], fill=ACCENT, width=3)
    y += sizes["name"]
    for _lang, sign in content.signs:
        lines(sign, sizes["sign"], ACCENT, bold=True)
    qr = qr_image(content.url, sizes["qr"])
    if qr.width > sizes["qr"] * 1.05:
        qr = qr.resize((sizes["qr"], sizes["qr"]), Image.Resampling.NEAREST)
    image.paste(qr, (int(centre - qr.width / 2), int(y)))
    y += qr.height + sizes["scan"] // 2
    for _lang, scan in content.scan:
        lines(scan, sizes["scan"], INK)
    y += sizes["scan"] // 2
    lines(content.or_address, sizes["small"], MUTED)
    lines(content.short_url, sizes["url"], INK, bold=True)
    y += sizes["small"]
    lines(content.moderated, sizes["small"], MUTED)
    return image


def poster_png(campaign: Campaign, base_url: str) -> bytes:
    """The poster as a PNG (150 dpi, for screens, slides and home printers)."""
    buffer = io.BytesIO()
    render_poster(campaign, base_url, dpi=PNG_DPI).save(
        buffer, "PNG", optimize=True, dpi=(PNG_DPI, PNG_DPI)
    )
    return buffer.getvalue()


def poster_pdf(campaign: Campaign, base_url: str) -> bytes:
    """The poster as a one-page A4 PDF (300 dpi)."""
    buffer = io.BytesIO()
    image = render_poster(campaign, base_url, dpi=PDF_DPI)
    image.save(
        buffer,
        "PDF",
        resolution=float(PDF_DPI),
        quality=92,
        title=content_title(campaign),
        producer="We Remember",
    )
    return buffer.getvalue()


def content_title(campaign: Campaign) -> str:
    """The PDF's document title."""
    return f"{campaign.name} — QR poster"
