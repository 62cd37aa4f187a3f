"""Text rendering: Hebrew runs right to left, Kazakh and Russian letters are real glyphs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from aggregator.media import text
from aggregator.media.text import (
    FontNotFoundError,
    default_engine,
    draw_text,
    find_font,
    render_text,
    wrap_text,
)

ENGINES = ["raqm", "basic"] if default_engine() == "raqm" else ["basic"]
KAZAKH = "әғқңөұүһіӘҒҚҢӨҰҮҺІ"
NOTDEF = "\U000e01f0"  # no font has a glyph here: it renders as .notdef (tofu)


def alpha(im: Image.Image) -> Image.Image:
    return im.getchannel("A")


def diff(a: Image.Image, b: Image.Image) -> float:
    return float(ImageStat.Stat(ImageChops.difference(a, b)).mean[0])


def test_find_font_locates_dejavu() -> None:
    assert find_font().name == "DejaVuSans.ttf"
    assert find_font(bold=True).name == "DejaVuSans-Bold.ttf"


def test_missing_font_has_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(text, "FONT_DIRS", (tmp_path,))
    with pytest.raises(FontNotFoundError, match="fonts-dejavu-core"):
        find_font()


@pytest.mark.parametrize("engine", ENGINES)
def test_hebrew_is_drawn_right_to_left(engine: text.Engine) -> None:
    alef = alpha(render_text("א", size=60, engine=engine))
    bet = alpha(render_text("ב", size=60, engine=engine))
    pair = alpha(render_text("א  ב", size=60, engine=engine))  # logical order: alef first
    right = pair.crop((pair.width - alef.width, 0, pair.width, alef.height))
    left = pair.crop((0, 0, bet.width, bet.height))
    assert diff(right, alef) < 1.0  # the first letter sits at the right end
    assert diff(left, bet) < 1.0
    assert diff(pair.crop((0, 0, alef.width, alef.height)), alef) > 20


@pytest.mark.parametrize("engine", ENGINES)
def test_mixed_line_keeps_latin_left_to_right(engine: text.Engine) -> None:
    ltr = alpha(render_text("We", size=48, engine=engine))
    line = alpha(render_text("We אב", size=48, engine=engine))
    assert diff(line.crop((0, 0, ltr.width, ltr.height)), ltr) < 1.0


@pytest.mark.parametrize("engine", ENGINES)
def test_kazakh_and_russian_letters_are_not_tofu(engine: text.Engine) -> None:
    tofu = alpha(render_text(NOTDEF, size=40, engine=engine))
    for letter in KAZAKH + "Мы помним":
        if letter == " ":
            continue
        glyph = alpha(render_text(letter, size=40, engine=engine))
        assert glyph.getbbox() is not None, letter
        if glyph.size == tofu.size:
            assert diff(glyph, tofu) > 5, f"{letter!r} renders as .notdef"


def test_kazakh_letters_differ_from_their_russian_lookalikes() -> None:
    for kazakh, russian in zip("ғқңұү", "гкнуу", strict=True):
        a = alpha(render_text(kazakh, size=40))
        b = alpha(render_text(russian, size=40))
        assert a.size != b.size or diff(a, b) > 5, kazakh


def test_draw_text_on_an_image_and_wrap() -> None:
    im = Image.new("RGB", (600, 200), "white")
    draw_text(im, (590, 10), "אנחנו זוכרים", size=32, anchor="ra", fill="black")
    draw_text(ImageDraw.Draw(im), (10, 100), "Біз еске аламыз", size=32, fill=(0, 0, 0))
    box = ImageChops.invert(im.convert("L")).getbbox()
    assert box is not None and 560 < box[2] <= 591 and box[0] <= 16
    lines = wrap_text("Біз еске аламыз — We Remember — Мы помним", size=32, max_width=260)
    assert len(lines) >= 3 and all(lines)


def test_render_text_is_tight_rgba() -> None:
    im = render_text("We Remember", size=30, fill=(10, 20, 30, 255), padding=4)
    assert im.mode == "RGBA"
    ink = im.getchannel("A").getbbox()
    assert ink is not None
    assert all(
        abs(a - b) <= 1 for a, b in zip(ink, (4, 4, im.width - 4, im.height - 4), strict=True)
    )
    multi = render_text("Мы помним\nWe Remember", size=30)
    assert multi.height > im.height
