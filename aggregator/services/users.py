"""Accounts: creation, Argon2id password hashing and invitation links."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, func, select

from aggregator.errors import InvalidInput
from aggregator.models import Role, User, utcnow

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$")
MIN_PASSWORD = 10
INVITE_DAYS = 7

_hasher = PasswordHasher()  # argon2-cffi defaults are Argon2id (RFC 9106 low-memory profile)


def hash_token(token: str) -> str:
    """sha256 hex of a random token; tokens are only ever stored hashed."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash never matches (but still costs time)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_strength(password: str) -> None:
    """Raise InvalidInput for passwords too short to protect a moderation account."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"The password needs at least {MIN_PASSWORD} characters.", field="password"
        )


def create_user(
    *, session: Session, email: str, role: Role, password: str | None = None
) -> tuple[User, str | None]:
    """Create an account; without a password, returns a one-time invitation token too."""
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput(f"Not an e-mail address: {email!r}", field="email")
    if session.exec(select(func.count()).select_from(User).where(User.email == email)).one():
        raise InvalidInput(f"An account for {email} exists already.", field="email")
    user = User(email=email, role=role)
    invite: str | None = None
    if password is None:
        invite = secrets.token_urlsafe(32)
        user.invite_token_hash = hash_token(invite)
        user.invite_expires_at = utcnow() + timedelta(days=INVITE_DAYS)
    else:
        check_password_strength(password)
        user.password_hash = hash_password(password)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user, invite
