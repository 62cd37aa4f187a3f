"""Health check and processed-media files."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from aggregator.deps import SessionDep
from aggregator.media.storage import media_response
from aggregator.web.templating import PACKAGE_DIR

router = APIRouter()


@router.get("/healthz", name="healthz", include_in_schema=False)
def healthz(session: SessionDep) -> JSONResponse:
    """200 when the database answers."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>We Remember API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<link rel="icon" href="/static/img/candle.svg" type="image/svg+xml"></head>
<body><div id="swagger-ui" data-openapi="/api/v1/openapi.json"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/js/docs.js"></script></body></html>"""

# Swagger UI sets style attributes as it renders; this page alone allows inline styles.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@router.get("/docs", name="api_docs", include_in_schema=False)
def api_docs() -> HTMLResponse:
    """Interactive documentation of the JSON API (OpenAPI at /api/v1/openapi.json)."""
    return HTMLResponse(DOCS_PAGE, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico on pages without an icon link (feeds, JSON)."""
    return FileResponse(
        PACKAGE_DIR / "static" / "img" / "candle.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/media/{key:path}", name="media", include_in_schema=False)
def serve_media(key: str, request: Request) -> Response:
    """A processed image by storage key (404 once taken down; keys are unguessable)."""
    return media_response(request.app.state.storage, key)
