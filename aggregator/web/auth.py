"""Server-side login sessions and the dependencies that guard pages by role.

The ``session`` cookie holds only a random 256-bit token; the database keeps its sha256
(``LoginSession.token_hash``), so a leaked database does not leak live sessions. A session ends
after ``session_idle_minutes`` without a request, ``session_max_hours`` after login however
active, or at logout (the row is deleted, so the old cookie is refused server-side).
"""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import Depends
from sqlalchemy import bindparam, delete
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from aggregator.config import Settings
from aggregator.deps import request_session
from aggregator.errors import Forbidden, LoginRequired
from aggregator.models import Event, EventHost, LoginSession, Role, User, utcnow
from aggregator.services.ratelimit import ip_bucket
from aggregator.services.users import hash_token

SESSION_COOKIE = "session"
# last_seen_at is written at most this often: a busy moderator's every keystroke must not
# become a database write, and idle expiry does not need second precision.
TOUCH_EVERY = timedelta(seconds=60)
STAFF_ROLES = frozenset({Role.admin, Role.moderator})
HOST_ROLES = frozenset({Role.admin, Role.moderator, Role.host})


def client_ip(request: Request) -> str:
    """The caller's address bucket (IPv6 per /64); X-Forwarded-For only when trusted."""
    settings: Settings = request.app.state.settings
    address = request.client.host if request.client else "unknown"
    if settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        # The proxy appends the address it saw last; earlier entries are client-supplied.
        parts = [p.strip() for p in forwarded.split(",") if p.strip()]
        if parts:
            address = parts[-1]
    return ip_bucket(address)


def _cookie_secure(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def start_session(
    *, session: Session, request: Request, response: Response, user: User
) -> LoginSession:
    """Log ``user`` in: a new token (never the one sent before login), cookie set on response.

    Any session the browser already had is deleted first (rotation defeats fixation).
    """
    settings: Settings = request.app.state.settings
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        session.execute(delete(LoginSession).where(col(LoginSession.token_hash) == hash_token(old)))
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = LoginSession(
        token_hash=hash_token(token),
        user_id=user.id,  # type: ignore[arg-type]
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
    )
    user.last_login_at = now
    session.add(row)
    session.add(user)
    session.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_max_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(settings),
    )
    request.state.user = user
    return row


def end_session(*, session: Session, request: Request, response: Response) -> None:
    """Log out: delete the server-side session and clear the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        session.execute(
            delete(LoginSession).where(col(LoginSession.token_hash) == hash_token(token))
        )
        session.commit()
    settings: Settings = request.app.state.settings
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_cookie_secure(settings)
    )
    request.state.user = None


def end_user_sessions(*, session: Session, user_id: int) -> None:
    """Delete every session of one account (deactivation, password change); caller commits."""
    session.execute(delete(LoginSession).where(col(LoginSession.user_id) == user_id))


@functools.cache
def _session_lookup() -> Select[LoginSession, User]:
    """The session row and its user by token hash; built once (every staff request runs it)."""
    return (
        select(LoginSession, User)
        .join(User, col(User.id) == col(LoginSession.user_id))
        .where(col(LoginSession.token_hash) == bindparam("token_hash"))
    )


def load_user(request: Request, session: Session) -> User | None:
    """The logged-in, active user of this request, or None; expired sessions are deleted."""
    if hasattr(request.state, "user_loaded"):
        user: User | None = request.state.user
        return user
    request.state.user_loaded = True
    request.state.user = None
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    found_row = session.exec(_session_lookup(), params={"token_hash": hash_token(token)}).first()
    # Always end the transaction before the route runs: a SQLite read snapshot kept open
    # would make the request's first write fail if another writer committed in between.
    sqlite = session.get_bind().dialect.name == "sqlite"
    if found_row is None:
        if sqlite:
            session.commit()
        return None
    row, found = found_row
    settings: Settings = request.app.state.settings
    now = utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        session.execute(delete(LoginSession).where(col(LoginSession.id) == row.id))
        session.commit()
        return None
    if not found.active:
        if sqlite:
            session.commit()
        return None
    touched = now - row.last_seen_at >= TOUCH_EVERY
    if touched:
        row.last_seen_at = now
        session.add(row)
    if touched or sqlite:
        session.commit()
    request.state.user = found
    return found


def _login_required(request: Request) -> LoginRequired:
    path = request.url.path
    if request.url.query and request.method == "GET":
        path += "?" + request.url.query
    # After a POST the form is gone; the login page then leads back to the queue.
    return LoginRequired(
        "Please log in.", next_url=path if request.method == "GET" else "/moderate"
    )


async def optional_user(request: Request) -> User | None:
    """Dependency: the logged-in user or None (never refuses).

    Every route runs it, so it takes no database session of its own: anonymous requests (no
    session cookie: every participant and public page) are answered on the event loop with no
    database work, and only a request with a cookie pays a worker thread and a short session
    for the lookup. The answer is kept on the request for the staff guards below.
    """
    if not hasattr(request.state, "user_loaded"):
        if request.cookies.get(SESSION_COOKIE):
            return await run_in_threadpool(_load_user_in_own_session, request)
        request.state.user_loaded = True
        request.state.user = None
    user: User | None = request.state.user
    return user


def _load_user_in_own_session(request: Request) -> User | None:
    with request_session(request) as session:
        return load_user(request, session)


async def current_user(request: Request) -> User:
    """Dependency: any logged-in user; pages redirect to /login, the API answers 401."""
    user = await optional_user(request)
    if user is None:
        raise _login_required(request)
    return user


async def _moderator(request: Request) -> User:
    """Dependency: an admin or moderator."""
    user = await current_user(request)
    if Role(user.role) not in STAFF_ROLES:
        raise Forbidden("Your account may not open this page.")
    return user


async def _admin(request: Request) -> User:
    """Dependency: an admin."""
    user = await current_user(request)
    if Role(user.role) != Role.admin:
        raise Forbidden("Only administrators may open this page.")
    return user


async def _host(request: Request) -> User:
    """Dependency: an admin, moderator or host."""
    user = await current_user(request)
    if Role(user.role) not in HOST_ROLES:
        raise Forbidden("Your account may not open this page.")
    return user


def can_access_event(user: User, event: Event, session: Session) -> bool:
    """Admins and moderators reach every event; hosts only those assigned via EventHost."""
    if Role(user.role) in STAFF_ROLES:
        return True
    if Role(user.role) != Role.host or event.id is None or user.id is None:
        return False
    link = session.exec(
        select(EventHost.id).where(EventHost.event_id == event.id, EventHost.user_id == user.id)
    ).first()
    return link is not None


def accessible_event_ids(user: User, session: Session) -> list[int] | None:
    """Event ids a host may open; None means all (admins and moderators)."""
    if Role(user.role) in STAFF_ROLES:
        return None
    if Role(user.role) != Role.host:
        return []
    return [
        int(i)
        for i in session.exec(select(EventHost.event_id).where(EventHost.user_id == user.id)).all()
    ]


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]
ModeratorUser = Annotated[User, Depends(_moderator)]
AdminUser = Annotated[User, Depends(_admin)]
HostUser = Annotated[User, Depends(_host)]
