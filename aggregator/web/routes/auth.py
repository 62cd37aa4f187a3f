"""Log in, log out, and accept an invitation (set a password).

Unknown e-mail, deactivated account and wrong password all get the same page, status and
timing (a dummy Argon2 verify runs for unknown accounts); attempts are limited per IP.
"""

from __future__ import annotations

from typing import Annotated

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, Form
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.config import Settings
from aggregator.deps import SessionDep
from aggregator.errors import InvalidInput, NotFound
from aggregator.models import Role, User, utcnow
from aggregator.services.audit import audit
from aggregator.services.moderation_queue import release_claims
from aggregator.services.ratelimit import hit
from aggregator.services.users import (
    check_password_strength,
    hash_password,
    hash_token,
    verify_password,
)
from aggregator.web.auth import OptionalUser, client_ip, end_session, load_user, start_session
from aggregator.web.csrf import require_csrf_form
from aggregator.web.templating import gettext, render

router = APIRouter(include_in_schema=False)

LOGIN_WINDOW_SECONDS = 300
# Longer inputs are refused before hashing: Argon2 over a megabyte is a cheap DoS.
MAX_PASSWORD = 1024
MAX_EMAIL = 320
NO_STORE = {"Cache-Control": "no-store"}
_hasher = PasswordHasher()

CsrfChecked = Annotated[None, Depends(require_csrf_form)]


def safe_next(value: str | None, default: str) -> str:
    """A local path to return to after login; anything pointing elsewhere becomes ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 32 for ch in value):
        return default
    return value


def home_for(user: User) -> str:
    """Where a role lands after login."""
    if Role(user.role) == Role.host:
        return "/admin/events"
    return "/moderate"


def _login_page(
    request: Request, *, email: str = "", next_url: str = "", error: str = "", status: int = 200
) -> Response:
    return render(
        request,
        "auth/login.html",
        {"email": email, "next": next_url, "error": error},
        status_code=status,
        headers=NO_STORE,
    )


@router.get("/login", name="login")
def login_form(request: Request, user: OptionalUser, next: str = "") -> Response:
    """The login form (a logged-in user goes straight on)."""
    if user is not None:
        return RedirectResponse(safe_next(next, home_for(user)), status_code=303)
    return _login_page(request, next_url=safe_next(next, ""))


@router.post("/login", name="login_submit")
def login_submit(
    request: Request,
    session: SessionDep,
    _csrf: CsrfChecked,
    email: Annotated[str, Form(max_length=100_000)] = "",
    password: Annotated[str, Form(max_length=2_000_000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password and start a session; the same answer for every kind of failure."""
    settings: Settings = request.app.state.settings
    hit(session, f"login:{client_ip(request)}", settings.login_rate_limit, LOGIN_WINDOW_SECONDS)
    email = email.strip().lower()
    if len(password) > MAX_PASSWORD or len(email) > MAX_EMAIL:
        raise InvalidInput("The e-mail address or password is too long.", field="password")
    user = session.exec(select(User).where(User.email == email)).first() if email else None
    usable = user is not None and user.active and user.password_hash is not None
    # verify_password runs a dummy Argon2 verify when there is no hash, to keep timing flat.
    ok = verify_password(user.password_hash if usable and user else None, password)
    if not ok or user is None:
        return _login_page(
            request,
            email=email,
            next_url=safe_next(next, ""),
            error=gettext(request, "The e-mail address or the password is not right."),
            status=401,
        )
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    response = RedirectResponse(safe_next(next, home_for(user)), status_code=303)
    start_session(session=session, request=request, response=response, user=user)
    return response


@router.post("/logout", name="logout")
def logout(request: Request, session: SessionDep, _csrf: CsrfChecked) -> Response:
    """End the session server-side, give back the queue items it held, clear the cookie."""
    user = load_user(request, session)
    if user is not None and user.id is not None:
        release_claims(session, user_id=user.id)
    response = RedirectResponse("/login", status_code=303)
    end_session(session=session, request=request, response=response)
    return response


def _invited_user(session: SessionDep, token: str) -> User:
    user = (
        session.exec(select(User).where(User.invite_token_hash == hash_token(token))).first()
        if 10 <= len(token) <= 100
        else None
    )
    if (
        user is None
        or not user.active
        or user.invite_expires_at is None
        or user.invite_expires_at <= utcnow()
    ):
        raise NotFound("This invitation does not exist or has expired. Ask for a new one.")
    return user


@router.get("/invite/{token}", name="invite")
def invite_form(request: Request, session: SessionDep, token: str) -> Response:
    """The set-your-password page of an invitation link."""
    user = _invited_user(session, token)
    return render(
        request,
        "auth/invite.html",
        {"invited": user, "token": token, "errors": {}, "display_name": user.display_name},
        headers={**NO_STORE, "Referrer-Policy": "no-referrer"},
    )


@router.post("/invite/{token}", name="invite_submit")
def invite_submit(
    request: Request,
    session: SessionDep,
    _csrf: CsrfChecked,
    token: str,
    display_name: Annotated[str, Form(max_length=10_000)] = "",
    password: Annotated[str, Form(max_length=2_000_000)] = "",
    password_again: Annotated[str, Form(max_length=2_000_000)] = "",
) -> Response:
    """Set the password, use up the invitation and log in."""
    settings: Settings = request.app.state.settings
    hit(session, f"login:{client_ip(request)}", settings.login_rate_limit, LOGIN_WINDOW_SECONDS)
    user = _invited_user(session, token)
    errors: dict[str, str] = {}
    if len(display_name.strip()) > 200:
        errors["display_name"] = gettext(request, "Please use at most 200 characters.")
    try:
        check_password_strength(password)
        if len(password) > MAX_PASSWORD:
            raise InvalidInput("too long", field="password")
    except InvalidInput:
        errors["password"] = gettext(request, "The password needs between 10 and 1024 characters.")
    if not errors.get("password") and password != password_again:
        errors["password_again"] = gettext(request, "The two passwords are not the same.")
    if errors:
        return render(
            request,
            "auth/invite.html",
            {"invited": user, "token": token, "errors": errors, "display_name": display_name},
            status_code=422,
            headers={**NO_STORE, "Referrer-Policy": "no-referrer"},
        )
    user.password_hash = hash_password(password)
    user.display_name = display_name.strip()
    user.invite_token_hash = None
    user.invite_expires_at = None
    session.add(user)
    audit(session, actor_id=user.id, actor_label=user.email, action="user.invite_accepted")
    session.commit()
    response = RedirectResponse(home_for(user), status_code=303)
    start_session(session=session, request=request, response=response, user=user)
    return response
