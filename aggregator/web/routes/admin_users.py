"""Administration of accounts: invite, change role, deactivate and reactivate, new link.

An admin cannot demote or deactivate their own account (nobody must lock the last admin
out); deactivating ends the person's sessions at once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.config import Settings
from aggregator.deps import SessionDep
from aggregator.errors import Conflict, InvalidInput, NotFound
from aggregator.models import Event, EventHost, Role, User, utcnow
from aggregator.services.audit import audit
from aggregator.services.moderation_queue import release_claims
from aggregator.services.users import EMAIL_RE, INVITE_DAYS, create_user, hash_token
from aggregator.web.auth import AdminUser, end_user_sessions
from aggregator.web.csrf import require_csrf_form
from aggregator.web.routes.admin import NO_STORE, FormData, translate_errors
from aggregator.web.routes.api_moderation import DbId, actor_label
from aggregator.web.templating import render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]


def _audit(session: Session, actor: User, action: str, target: User, **detail: object) -> None:
    audit(
        session,
        actor_id=actor.id,
        actor_label=actor_label(actor),
        action=action,
        detail={"user_id": target.id, "email": target.email, **detail},
    )


def _page(
    request: Request,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    invite_link: str | None = None,
    invited: User | None = None,
    status_code: int = 200,
) -> Response:
    users = session.exec(select(User).order_by(col(User.email))).all()
    hosted = session.exec(
        select(EventHost.user_id, Event.name).join(Event, col(Event.id) == col(EventHost.event_id))
    ).all()
    events: dict[int, list[str]] = {}
    for user_id, name in hosted:
        events.setdefault(int(user_id), []).append(name)
    return render(
        request,
        "admin/users.html",
        {
            "section": "users",
            "users": users,
            "events": events,
            "roles": [r.value for r in Role],
            "errors": translate_errors(request, errors or {}),
            "values": values or {"email": "", "role": "moderator"},
            "invite_link": invite_link,
            "invited": invited,
            "now": utcnow(),
        },
        status_code=status_code,
        headers={**NO_STORE, "Referrer-Policy": "no-referrer"},
    )


@router.get("/admin/users", name="admin_users")
def users_list(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """Every account with its role, state and hosted events; the invitation form."""
    return _page(request, session)


def _link(request: Request, token: str) -> str:
    settings: Settings = request.app.state.settings
    return f"{settings.public_base_url.rstrip('/')}/invite/{token}"


@router.post("/admin/users", name="admin_user_invite")
def user_invite(
    request: Request, session: SessionDep, user: AdminUser, _csrf: CsrfChecked, data: FormData
) -> Response:
    """Create an account and show its one-time invitation link (valid seven days)."""
    email, role = data.get("email", "").strip(), data.get("role", "")
    if role not in {r.value for r in Role}:
        return _page(
            request, session, errors={"role": "Choose a role."}, values=data, status_code=422
        )
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email.lower()):
        errors["email"] = "This is not an e-mail address."
    elif session.exec(select(User).where(User.email == email.lower())).first():
        errors["email"] = "There is an account for this address already."
    if errors:
        return _page(request, session, errors=errors, values=data, status_code=422)
    try:
        invited, token = create_user(session=session, email=email, role=Role(role))
    except InvalidInput as exc:
        session.rollback()
        errors = {exc.field or "email": exc.message}
        return _page(request, session, errors=errors, values=data, status_code=422)
    _audit(session, user, "user.invite", invited, role=role)
    session.commit()
    assert token is not None
    return _page(request, session, invite_link=_link(request, token), invited=invited)


def _target(session: Session, user_id: int) -> User:
    target = session.get(User, user_id)
    if target is None:
        raise NotFound("There is no such account.")
    return target


@router.post("/admin/users/{user_id}/role", name="admin_user_role")
def user_role(
    session: SessionDep, user: AdminUser, _csrf: CsrfChecked, data: FormData, user_id: DbId
) -> Response:
    """Change someone's role (not your own)."""
    target = _target(session, user_id)
    role = data.get("role", "")
    if role not in {r.value for r in Role}:
        raise InvalidInput("Choose a role.", field="role")
    if target.id == user.id:
        raise Conflict("You cannot change your own role.")
    if target.role != role:
        _audit(session, user, "user.role", target, old=str(target.role), new=role)
        target.role = Role(role)
        session.add(target)
        session.commit()
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/active", name="admin_user_active")
def user_active(
    session: SessionDep, user: AdminUser, _csrf: CsrfChecked, data: FormData, user_id: DbId
) -> Response:
    """Deactivate (ends the person's sessions and claims) or reactivate an account."""
    target = _target(session, user_id)
    active = data.get("active") == "1"
    if target.id == user.id and not active:
        raise Conflict("You cannot deactivate your own account.")
    target.active = active
    session.add(target)
    if not active:
        end_user_sessions(session=session, user_id=int(target.id or 0))
    _audit(session, user, "user.activate" if active else "user.deactivate", target)
    session.commit()
    if not active:
        release_claims(session, user_id=int(target.id or 0))
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/invite", name="admin_user_reinvite")
def user_reinvite(
    request: Request, session: SessionDep, user: AdminUser, _csrf: CsrfChecked, user_id: DbId
) -> Response:
    """A fresh invitation link (also a password reset: the old password stops working)."""
    target = _target(session, user_id)
    if target.id == user.id:
        raise Conflict("You cannot send yourself a new invitation link.")
    token = secrets.token_urlsafe(32)
    target.invite_token_hash = hash_token(token)
    target.invite_expires_at = utcnow() + timedelta(days=INVITE_DAYS)
    target.password_hash = None
    session.add(target)
    end_user_sessions(session=session, user_id=int(target.id or 0))
    _audit(session, user, "user.reinvite", target)
    session.commit()
    return _page(request, session, invite_link=_link(request, token), invited=target)
