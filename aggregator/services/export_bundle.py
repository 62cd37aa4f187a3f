"""The offline bundle: a zip whose ``index.html`` plays the event's slideshow from ``file://``.

It is the live page without a server: the same stage and slide template
(``templates/slideshow/_slide.html`` via ``bundle.html``), the same ``slideshow.js`` and CSS,
the feed embedded as ``assets/feed.js`` (browsers refuse ``fetch`` on ``file://``), and every
address relative. Images are the stored slide derivatives, copied as they are when they fit
1920×1080 and scaled down when the installation makes larger (4K) slides.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Final

from PIL import Image

from aggregator import i18n
from aggregator.models import utcnow
from aggregator.services.exports import ExportContext
from aggregator.services.slideshows import Slide
from aggregator.services.slideshows_control import control_state
from aggregator.services.slideshows_document import feed_document, qr_svg
from aggregator.web.templating import PACKAGE_DIR, make_templates

BUNDLE_SIZE: Final = (1920, 1080)
README: Final = """{title}

{how}

index.html
images/
assets/
"""


def image_name(slide: Slide) -> str:
    """File name of a slide's image inside the bundle."""
    return f"images/{slide.id}.jpg"


def fitted_jpeg(data: bytes, width: int, height: int, box: tuple[int, int] = BUNDLE_SIZE) -> bytes:
    """The JPEG as it is when it fits ``box``, else scaled down to fit (quality 82)."""
    if width <= box[0] and height <= box[1]:
        return data
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail(box, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=82)
        return out.getvalue()


def _read(ctx: ExportContext, key: str) -> bytes:
    with ctx.storage.open(key) as handle:
        return handle.read()


def render_index(ctx: ExportContext) -> str:
    """``index.html``: bundle.html with the event's language and theme, relative assets."""
    settings = ctx.show
    env = make_templates().env
    return env.get_template("slideshow/bundle.html").render(
        lang=ctx.lang,
        dir=i18n.direction(ctx.lang),
        i18n=i18n.translations(ctx.lang),
        event=ctx.event,
        theme=settings["theme"],
        transition=settings["transition"],
        mode="offline",
        asset_base="assets",
    )


def feed_script(ctx: ExportContext, slides: list[Slide], *, has_logo: bool) -> str:
    """``assets/feed.js``: the feed document (same schema as the live one) as a global."""
    document: dict[str, Any] = feed_document(
        event=ctx.event,
        campaign=ctx.campaign,
        slides=slides,
        lang=ctx.lang,
        direction=i18n.direction(ctx.lang),
        image_url=lambda slide, _style: image_name(slide),
        gettext=ctx.gettext,
        qr={"url": ctx.upload_url, "image": "images/qr.svg", "text": ctx.gettext("Add your photo")},
        logo_url="images/logo.jpg" if has_logo else None,
    )
    state = control_state(ctx.event)
    document["control"] = {**state, "blank": False, "paused": False, "silence_until": None}
    document["server_time"] = utcnow().isoformat()
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # "</" cannot end a script element here, but keep the file safe to inline anywhere.
    return "window.WR_FEED = " + raw.replace("</", "<\\/") + ";\n"


def write_bundle(ctx: ExportContext, slides: list[Slide], path: Path) -> None:
    """Write the bundle zip for ``slides`` to ``path``."""
    root = f"{ctx.campaign.slug}-event-{ctx.event.id}"
    static = PACKAGE_DIR / "static"
    logo_key = ctx.show.get("logo")
    has_logo = bool(logo_key) and ctx.storage.exists(str(logo_key))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def text(name: str, content: str) -> None:
            archive.writestr(f"{root}/{name}", content.encode())

        text("index.html", render_index(ctx))
        text("assets/slideshow.css", (static / "css" / "slideshow.css").read_text())
        # display_link.js: in the offline mode only the wake lock and the idle cursor.
        text("assets/display_link.js", (static / "js" / "display_link.js").read_text())
        text("assets/slideshow.js", (static / "js" / "slideshow.js").read_text())
        text("assets/feed.js", feed_script(ctx, slides, has_logo=has_logo))
        text(
            "README.txt",
            README.format(
                title=ctx.event.name,
                how=ctx.gettext(
                    "Unzip this folder and open index.html in a web browser. No internet "
                    "connection is needed. Keys: F full screen, B blank, P pause, arrows "
                    "next and previous."
                ),
            ),
        )
        text("images/qr.svg", qr_svg(ctx.upload_url).decode())
        if has_logo:
            archive.writestr(f"{root}/images/logo.jpg", _read(ctx, str(logo_key)))
        total = max(1, len(slides))
        for done, slide in enumerate(slides, start=1):
            data = fitted_jpeg(_read(ctx, slide.keys["slide"]), slide.width, slide.height)
            # JPEG does not compress further; storing saves the time.
            archive.writestr(f"{root}/{image_name(slide)}", data, compress_type=zipfile.ZIP_STORED)
            ctx.progress(done / total * 0.98)
