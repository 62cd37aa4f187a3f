"""FastAPI dependencies: the request's database session and settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session
from starlette.requests import Request

from aggregator.config import Settings


def request_session(request: Request) -> Session:
    """A new database session on the app's engine (use it as ``with request_session(r) as s``);
    objects stay readable after commit, as every route expects."""
    return Session(request.app.state.engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; routes commit through the services they call.

    Async although the session is used synchronously: opening a session does no I/O (the
    connection is taken at its first query, in the route's worker thread) and closing only
    hands the connection back, so running this on the event loop saves two thread hops per
    request, which on two cores were most of a small page's server time.
    """
    with request_session(request) as session:
        yield session


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
