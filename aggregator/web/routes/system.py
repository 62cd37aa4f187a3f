"""Health check and processed-media files."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aggregator.deps import SessionDep
from aggregator.media.storage import media_response

router = APIRouter()


@router.get("/healthz", name="healthz", include_in_schema=False)
def healthz(session: SessionDep) -> JSONResponse:
    """200 when the database answers."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get("/media/{key:path}", name="media", include_in_schema=False)
def serve_media(key: str, request: Request) -> Response:
    """A processed image by storage key (404 once taken down; keys are unguessable)."""
    return media_response(request.app.state.storage, key)
