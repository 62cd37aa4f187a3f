"""The feed document and the programme of a show, built from ``slideshows.build_slides``.

``feed_document`` makes the JSON every display reads (schema in ``services/slideshows.py``);
``program`` lays out one pass of the show for exports (intro, silence, photos, QR, closing).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import segno

from aggregator.models import Campaign, Event
from aggregator.services.slideshows import Slide
from aggregator.services.slideshows_settings import effective_settings


@dataclass(frozen=True)
class ProgramSlide:
    """One step of a programme: a photo, or intro/closing/qr/silence text slide."""

    kind: str  # photo | intro | closing | qr | silence
    photo: Slide | None = None
    title: str = ""
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def program(
    slides: Iterable[Slide],
    settings: dict[str, Any],
    *,
    qr: dict[str, Any] | None = None,
    strings: dict[str, str] | None = None,
) -> list[ProgramSlide]:
    """One pass of the show as exports lay it out: intro, silence, photos with a QR slide
    after every ``qr_every`` photos (when ``qr`` is given), closing. Empty texts are skipped."""
    strings = strings or {}
    steps: list[ProgramSlide] = []
    intro, closing = settings["intro"], settings["closing"]
    if intro["title"] or intro["text"]:
        steps.append(ProgramSlide("intro", title=intro["title"], text=intro["text"]))
    if settings.get("silence_slide"):
        steps.append(
            ProgramSlide(
                "silence",
                title=strings.get("silence", "A moment of silence"),
                extra={"seconds": settings["silence_seconds"]},
            )
        )
    every = int(settings.get("qr_every") or 0)
    for count, slide in enumerate(slides, start=1):
        steps.append(ProgramSlide("photo", photo=slide))
        if qr is not None and every and count % every == 0:
            steps.append(ProgramSlide("qr", title=strings.get("qr", ""), extra=dict(qr)))
    if closing["title"] or closing["text"]:
        steps.append(ProgramSlide("closing", title=closing["title"], text=closing["text"]))
    return steps


def caption(slide: Slide, fields: Iterable[str]) -> dict[str, str]:
    """The caption parts an event shows ("" for the others), with the text's language."""
    shown = set(fields)
    return {
        "name": slide.name if "name" in shown else "",
        "city": slide.city if "city" in shown else "",
        "message": slide.message if "message" in shown else "",
        "source": slide.source if "source" in shown else "",
        "lang": slide.language or "",
        "dir": slide.direction,
    }


def slide_alt(slide: Slide, gettext: Callable[[str], str]) -> str:
    """The image's alt text, or a description made from its caption when the author gave none."""
    if slide.alt:
        return slide.alt
    if slide.name:
        return gettext("Photo shared by %(name)s") % {"name": slide.name}
    return gettext("A photo shared in remembrance")


def feed_item(
    slide: Slide,
    fields: Iterable[str],
    *,
    image_url: Callable[[Slide, str], str],
    gettext: Callable[[str], str],
) -> dict[str, Any]:
    """One entry of the feed's ``items`` (schema in the module docstring)."""
    return {
        "id": slide.id,
        "submission": slide.submission,
        "image": image_url(slide, "slide"),
        "thumb": image_url(slide, "thumb"),
        "width": slide.width,
        "height": slide.height,
        "color": slide.color,
        "alt": slide_alt(slide, gettext),
        "pinned": slide.pinned,
        "posted_at": slide.posted_at.isoformat(),
        "caption": caption(slide, fields),
    }


def feed_items(
    slides: Iterable[Slide],
    settings: dict[str, Any],
    *,
    image_url: Callable[[Slide, str], str],
    gettext: Callable[[str], str],
) -> list[dict[str, Any]]:
    """The feed's ``items`` list (schema in the module docstring)."""
    fields = settings["captions"]
    return [feed_item(s, fields, image_url=image_url, gettext=gettext) for s in slides]


def display_strings(gettext: Callable[[str], str]) -> dict[str, Any]:
    """On-screen words of the displays, in the event's language."""
    return {
        "silence": gettext("A moment of silence"),
        "qr": gettext("Add your photo"),
        "paused": gettext("Paused"),
        "offline": gettext("Offline — still showing the photos already here"),
        "empty": gettext("Photos will appear here as they are shared."),
        "help": {
            "next": gettext("Next photo"),
            "prev": gettext("Previous photo"),
            "fullscreen": gettext("Full screen"),
            "blank": gettext("Blank the screen"),
            "pause": gettext("Pause or resume"),
            "help": gettext("Show or hide this help"),
        },
    }


def feed_document(
    *,
    event: Event,
    campaign: Campaign | None,
    slides: list[Slide],
    lang: str,
    direction: str,
    image_url: Callable[[Slide, str], str],
    gettext: Callable[[str], str],
    qr: dict[str, Any] | None = None,
    logo_url: str | None = None,
    with_version: bool = True,
) -> dict[str, Any]:
    """The feed without ``control``; ``version`` hashes everything in it (left out when
    ``with_version`` is false, for callers that serialize once and hash the bytes)."""
    settings = effective_settings(event)
    intro, closing = settings["intro"], settings["closing"]
    document: dict[str, Any] = {
        "event": {
            "name": event.name,
            "title": campaign.name if campaign else event.name,
            "lang": lang,
            "dir": direction,
        },
        "settings": {
            "interval": settings["interval"],
            "transition": settings["transition"],
            "order": settings["order"],
            "captions": settings["captions"],
            "theme": settings["theme"],
            "qr_every": settings["qr_every"] if qr else 0,
            "silence_seconds": settings["silence_seconds"],
            "silence_slide": bool(settings["silence_slide"]),
            "logo": logo_url,
        },
        "intro": intro if intro["title"] or intro["text"] else None,
        "closing": closing if closing["title"] or closing["text"] else None,
        "qr": qr,
        "strings": display_strings(gettext),
        "items": feed_items(slides, settings, image_url=image_url, gettext=gettext),
    }
    if with_version:
        document["version"] = document_version(document)
    return document


def document_version(document: dict[str, Any]) -> str:
    """A short stable hash of a feed document (its ``version`` and ``control`` excluded)."""
    body = {k: v for k, v in document.items() if k not in {"version", "control"}}
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def upload_url(public_base_url: str, campaign: Campaign) -> str:
    """Absolute address of a campaign's upload page (what the QR code opens)."""
    return f"{public_base_url.rstrip('/')}/c/{campaign.slug}"


def qr_svg(url: str) -> bytes:
    """A black-on-white QR code (medium error correction) as SVG bytes."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(
        buffer, kind="svg", scale=10, border=2, dark="#000", light="#fff", xmldecl=False
    )
    return buffer.getvalue()
