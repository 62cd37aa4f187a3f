"""The campaign's QR poster: a page to print or download it, the A4 PDF and PNG, the QR SVG."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from aggregator.deps import SessionDep, SettingsDep
from aggregator.services.campaigns import get_campaign, localized
from aggregator.services.poster import poster_pdf, poster_png, qr_svg, short_address, upload_url
from aggregator.web.templating import render

router = APIRouter()

# Public and cheap to cache; five minutes lets an edited campaign name show up soon.
CACHE: Final = {"Cache-Control": "public, max-age=300"}


@router.get("/c/{slug}/poster", name="poster", include_in_schema=False)
def poster_page(
    slug: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """A page showing the poster, with the PDF, PNG and QR code to download."""
    campaign = get_campaign(session=session, slug=slug)
    url = upload_url(campaign, settings.public_base_url)
    context = {
        "campaign": campaign,
        "text": localized(campaign, request.state.lang),
        "upload_url": url,
        "short_url": short_address(url),
    }
    return render(request, "public/poster.html", context, headers=CACHE)


def _file(data: bytes, media_type: str, filename: str, *, download: bool) -> Response:
    disposition = "attachment" if download else "inline"
    return Response(
        data,
        media_type=media_type,
        headers={**CACHE, "Content-Disposition": f'{disposition}; filename="{filename}"'},
    )


@router.get("/c/{slug}/poster.pdf", name="poster_pdf", include_in_schema=False)
def poster_pdf_file(slug: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The printable A4 poster (PDF, 300 dpi)."""
    campaign = get_campaign(session=session, slug=slug)
    data = poster_pdf(campaign, settings.public_base_url)
    return _file(data, "application/pdf", f"poster-{campaign.slug}.pdf", download=True)


@router.get("/c/{slug}/poster.png", name="poster_png", include_in_schema=False)
def poster_png_file(slug: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The poster as an image (PNG, A4 at 150 dpi), for slides and screens."""
    campaign = get_campaign(session=session, slug=slug)
    data = poster_png(campaign, settings.public_base_url)
    return _file(data, "image/png", f"poster-{campaign.slug}.png", download=False)


@router.get("/c/{slug}/qr.svg", name="campaign_qr", include_in_schema=False)
def qr_code(slug: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The QR code to the upload page alone, as SVG."""
    campaign = get_campaign(session=session, slug=slug)
    data = qr_svg(upload_url(campaign, settings.public_base_url))
    return _file(data, "image/svg+xml", f"qr-{campaign.slug}.svg", download=False)
