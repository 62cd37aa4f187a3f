"""The application factory: ``create_app(settings)`` builds everything; nothing at import."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI
from starlette.staticfiles import StaticFiles

from aggregator import __version__
from aggregator.commit_stamp import CommitStamp
from aggregator.config import Settings
from aggregator.db import make_engine
from aggregator.media.storage import LocalStorage
from aggregator.services.uploads_worker import UploadWorker
from aggregator.web.auth import optional_user
from aggregator.web.body_cache import BodyCache
from aggregator.web.errors import install_error_handlers
from aggregator.web.middleware import RequestContextMiddleware
from aggregator.web.routes import ALL_ROUTERS
from aggregator.web.templating import PACKAGE_DIR, make_templates

log = logging.getLogger(__name__)


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """The shared client for collectors: the timeouts and redirect cap of DESIGN.md."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        follow_redirects=True,
        max_redirects=3,
        headers={"User-Agent": f"WeRemember/{__version__} (+{settings.public_base_url})"},
    )


def create_app(settings: Settings, *, start_scheduler: bool | None = None) -> FastAPI:
    """Build the web application for ``settings``; the scheduler runs when enabled."""
    run_scheduler = settings.scheduler_enabled if start_scheduler is None else start_scheduler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.http = make_http_client(settings)
        scheduler = None
        if run_scheduler:
            from aggregator.scheduler import start_scheduler as start

            scheduler = await start(app.state)
        app.state.scheduler = scheduler
        # Everything alive now (modules, routes, templates) lives as long as the process;
        # frozen, it is no longer scanned by every full garbage collection, which a live
        # feed's rebuilds trigger often (each took up to ~100 ms, seen in bench_slideshow).
        gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            app.state.public_bodies.stamp.close()  # before any await a cancel could cut
            app.state.upload_worker.stop()  # lets the uploads it is storing finish
            await app.state.http.aclose()
            app.state.engine.dispose()

    app = FastAPI(
        title="We Remember",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by routes/system.py from vendored files (the CSP forbids CDNs)
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        # Every page knows its signed-in user (for the staff links in the header); without a
        # session cookie this costs nothing.
        dependencies=[Depends(optional_user)],
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.effective_database_url)
    app.state.public_bodies = BodyCache(CommitStamp(app.state.engine))
    app.state.storage = LocalStorage(settings.effective_media_dir)
    app.state.upload_worker = UploadWorker(settings)  # its process starts with the first upload
    app.state.templates = make_templates()
    app.state.secret_key = settings.effective_secret_key()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, settings=settings)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    for router in ALL_ROUTERS:
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """Uvicorn factory: the app for ``Settings()`` read from the environment."""
    return create_app(Settings())
