"""A participant's receipt at ``/r/{token}``: their photos, what became of them, Withdraw."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.deps import SessionDep, SettingsDep
from aggregator.models import Campaign
from aggregator.services.receipts import receipt_for, withdraw
from aggregator.web.csrf import require_csrf_form
from aggregator.web.templating import render

router = APIRouter()

# Receipts carry a private token in the address: never cached, indexed or sent as Referer.
PRIVATE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


@router.get("/r/{token}", name="receipt", include_in_schema=False)
def receipt(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A participant's private page: their photos, what became of them, and Withdraw."""
    data = receipt_for(session=session, token=token)
    path = str(request.url_for("receipt", token=token).path)
    context = {
        "receipt": data,
        "submission": data.submission,
        "is_new": request.query_params.get("new") == "1",
        "confirm": request.query_params.get("withdraw") == "1",
        "receipt_url": settings.public_base_url.rstrip("/") + path,
        "campaign": session.get(Campaign, data.submission.campaign_id),
    }
    return render(request, "public/receipt.html", context, headers=PRIVATE_HEADERS)


@router.post(
    "/r/{token}/withdraw",
    name="withdraw",
    dependencies=[Depends(require_csrf_form)],
    include_in_schema=False,
)
def withdraw_photos(token: str, request: Request, session: SessionDep) -> Response:
    """Withdraw: out of the queue, slideshows, gallery and exports; files deleted."""
    withdraw(session=session, storage=request.app.state.storage, token=token)
    target = request.url_for("receipt", token=token).path
    return RedirectResponse(target, status_code=303, headers=PRIVATE_HEADERS)
