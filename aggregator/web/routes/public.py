"""The public front page: the campaigns people can take part in."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import Response

from aggregator.deps import SessionDep
from aggregator.models import Campaign
from aggregator.services.campaigns import localized
from aggregator.web.templating import render

router = APIRouter()


@router.get("/", name="home", include_in_schema=False)
def home(request: Request, session: SessionDep) -> Response:
    """List campaigns, newest first, in the visitor's language."""
    campaigns = session.exec(select(Campaign).order_by(Campaign.created_at.desc())).all()  # type: ignore[attr-defined]
    lang = request.state.lang
    return render(
        request,
        "public/home.html",
        {"campaigns": [(c, localized(c, lang)) for c in campaigns]},
    )
