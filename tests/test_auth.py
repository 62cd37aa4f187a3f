"""Accounts and sessions: security rows M1–M3 (passwords, brute force, sessions), invitations
and the role dependencies."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.errors import TooManyRequests
from aggregator.models import Event, EventHost, LoginSession, RateCounter, Role, User, utcnow
from aggregator.services.ratelimit import hit, ip_bucket
from aggregator.services.users import create_user, hash_password, hash_token
from aggregator.web.auth import can_access_event
from tests.conftest import make_settings
from tests.factories import PASSWORD, make_campaign, make_event, make_user
from tests.moderation_support import csrf, fresh_session, login


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


# -- M1 passwords -------------------------------------------------------------------------


def test_password_hash_is_argon2id_with_owasp_minimums() -> None:
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=\d+", hash_password("x" * 12))
    assert match is not None
    assert int(match[1]) >= 19456 and int(match[2]) >= 2


def test_login_rehashes_weak_hash(client: TestClient, session: Session) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user = make_user(session, password_hash=weak)
    assert login(client, user.email).status_code == 303
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored is not None and stored.password_hash != weak
    assert not PasswordHasher().check_needs_rehash(stored.password_hash or "")


def test_long_passphrase_works_and_megabyte_password_refused_fast(
    client: TestClient, session: Session
) -> None:
    phrase = "мы помним " * 6 + "abcd"  # 64 characters, Cyrillic
    assert len(phrase) == 64
    user = make_user(session, password_hash=hash_password(phrase))
    assert login(client, user.email, phrase).status_code == 303
    started = time.perf_counter()
    response = login(client, "nobody@example.org", "p" * 1_000_000)
    assert response.status_code in (413, 422)
    assert time.perf_counter() - started < 5  # generous: only proves no Argon2 on 1 MB


# -- M2 brute force and enumeration ---------------------------------------------------------


def test_unknown_user_and_wrong_password_answer_identically(
    client: TestClient, session: Session
) -> None:
    user = make_user(session)
    wrong = login(client, user.email, "wrong password!")
    unknown = login(client, "ghost@example.org", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text.replace(user.email, "EMAIL") == unknown.text.replace(
        "ghost@example.org", "EMAIL"
    )
    inactive = make_user(session, active=False)
    assert login(client, inactive.email).status_code == 401
    invited = make_user(session, password_hash=None)
    assert login(client, invited.email, "").status_code == 401


def test_26th_login_attempt_is_rate_limited(client: TestClient, session: Session) -> None:
    user = make_user(session)
    for _ in range(25):
        assert login(client, user.email, "wrong password!").status_code == 401
    response = login(client, user.email)  # even the right password now waits
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


def window_start(seconds: int) -> datetime:
    """The start of the current fixed window of ``seconds`` (as ratelimit aligns them)."""
    now = utcnow().timestamp()
    return datetime.fromtimestamp(now - now % seconds, UTC)


def test_rate_limit_counts_per_key_and_fades_with_the_window(session: Session) -> None:
    start = window_start(60)
    for _ in range(3):
        hit(session, "k1", 3, 60, now=start)
    with pytest.raises(TooManyRequests) as exc:
        hit(session, "k1", 3, 60, now=start)
    # 4 attempts in this window: the next passes once they weigh ≤ 2, halfway into the next.
    assert exc.value.retry_after == 60 + 30
    hit(session, "k2", 3, 60, now=start)  # another key counts on its own
    with pytest.raises(TooManyRequests):  # the previous window still weighs 4 × 0.9 here
        hit(session, "k1", 3, 60, now=start + timedelta(seconds=66))
    hit(session, "k1", 3, 60, now=start + timedelta(seconds=180))  # two windows later: reset
    counter = session.get(RateCounter, "k1")
    assert counter is not None and (counter.count, counter.previous) == (1, 0)


def test_rate_limit_allows_no_double_burst_across_a_window_boundary(session: Session) -> None:
    boundary = window_start(300) + timedelta(seconds=300)
    for n in range(25):  # 25 attempts in the last ten seconds of one window …
        hit(session, "burst", 25, 300, now=boundary - timedelta(seconds=10 - n / 5))
    with pytest.raises(TooManyRequests) as exc:  # … and the 26th just after the boundary
        hit(session, "burst", 25, 300, now=boundary + timedelta(seconds=1))
    assert 1 <= exc.value.retry_after <= 300
    # Once the previous window has faded far enough, attempts pass again.
    hit(session, "burst", 25, 300, now=boundary + timedelta(seconds=exc.value.retry_after + 1))


def test_ip_bucket_groups_ipv6_by_64() -> None:
    assert ip_bucket("2001:db8::1") == ip_bucket("2001:db8::ffff") == "2001:db8::/64"
    assert ip_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert ip_bucket("192.0.2.7") == "192.0.2.7"


# -- M3 sessions ----------------------------------------------------------------------------


def test_cookie_flags_and_rotation(client: TestClient, session: Session) -> None:
    user = make_user(session)
    client.cookies.set("session", "attacker-chosen-fixation-token")
    response = login(client, user.email)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests
    token = response.cookies["session"]
    assert token != "attacker-chosen-fixation-token" and len(token) >= 43
    stored = session.exec(select(LoginSession)).all()
    assert [s.token_hash for s in stored] == [hash_token(token)]  # only the hash is stored
    # A second login replaces the first session (rotation), it does not add to it.
    client.cookies.clear()
    client.cookies.set("session", token)
    assert login(client, user.email).cookies["session"] != token
    session.expire_all()
    assert len(session.exec(select(LoginSession)).all()) == 1


def test_secure_cookie_behind_https(tmp_path: Any, database_url: str, session: Session) -> None:
    from aggregator.app import create_app

    app = create_app(make_settings(tmp_path, database_url, public_base_url="https://x.example"))
    user = make_user(session)
    with TestClient(app, base_url="https://testserver") as secure_client:
        response = login(secure_client, user.email)
    assert "Secure" in response.headers["set-cookie"]


def test_logout_rejects_old_cookie_server_side(client: TestClient, session: Session) -> None:
    user = make_user(session)
    login(client, user.email)
    token = client.cookies["session"]
    assert client.get("/moderate", follow_redirects=False).status_code == 200
    # GET cannot log out (a link on another site must not end a session).
    assert client.get("/logout").status_code == 405
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 200
    client.cookies.set("session", token)  # replay the old cookie
    response = client.get("/moderate", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/moderate"


def test_idle_and_absolute_expiry(client: TestClient, session: Session) -> None:
    user = make_user(session)
    login(client, user.email)
    row = session.exec(select(LoginSession)).one()
    # Idle: last request longer ago than session_idle_minutes (120).
    row.last_seen_at = utcnow() - timedelta(minutes=121)
    session.add(row)
    session.commit()
    assert client.get("/moderate", follow_redirects=False).status_code == 303
    login(client, user.email)
    row = session.exec(select(LoginSession)).one()
    # Absolute: active a minute ago but the session is older than session_max_hours.
    row.last_seen_at = utcnow() - timedelta(minutes=1)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert client.get("/moderate", follow_redirects=False).status_code == 303
    assert session.exec(select(LoginSession)).all() == []


def test_api_without_session_is_401_json(client: TestClient) -> None:
    response = client.post("/api/v1/submissions/1/approve", headers={"X-CSRF-Token": "x"})
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("login_required", "csrf")


def test_login_next_is_kept_local(client: TestClient, session: Session) -> None:
    user = make_user(session)
    response = login(client, user.email, next="https://evil.example/")
    assert response.headers["location"] == "/moderate"
    login(client, user.email, next="//evil.example/")
    response = login(client, user.email, next="/admin")
    assert response.headers["location"] == "/admin"


def test_login_requires_csrf(client: TestClient, session: Session) -> None:
    user = make_user(session)
    client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403


# -- invitations and roles ------------------------------------------------------------------


def test_invitation_sets_password_once(client: TestClient, session: Session) -> None:
    user, token = create_user(session=session, email="new@example.org", role=Role.moderator)
    assert token is not None
    page = client.get(f"/invite/{token}")
    assert page.status_code == 200 and "new@example.org" in page.text
    data = {"csrf_token": csrf(client), "password": "short", "password_again": "short"}
    bad = client.post(f"/invite/{token}", data=data)
    assert bad.status_code == 422 and "10" in bad.text
    data = {"csrf_token": csrf(client), "password": "a long password", "password_again": "x"}
    assert client.post(f"/invite/{token}", data=data).status_code == 422
    data.update(password_again="a long password", display_name="Аня")
    done = client.post(f"/invite/{token}", data=data, follow_redirects=False)
    assert done.status_code == 303 and "session" in client.cookies
    assert client.get(f"/invite/{token}").status_code == 404  # used up
    client.cookies.clear()
    assert login(client, "new@example.org", "a long password").status_code == 303


def test_expired_or_unknown_invitation(client: TestClient, session: Session) -> None:
    user, token = create_user(session=session, email="late@example.org", role=Role.host)
    user.invite_expires_at = utcnow() - timedelta(minutes=1)
    session.add(user)
    session.commit()
    assert client.get(f"/invite/{token}").status_code == 404
    assert client.get("/invite/" + "x" * 43).status_code == 404


def test_roles_guard_pages(client: TestClient, session: Session) -> None:
    host = make_user(session, role=Role.host)
    login(client, host.email)
    assert client.get("/moderate", follow_redirects=False).status_code == 403
    assert client.get("/admin/users", follow_redirects=False).status_code == 403
    moderator = make_user(session, role=Role.moderator)
    login(client, moderator.email)
    assert client.get("/moderate").status_code == 200
    assert client.get("/admin/users", follow_redirects=False).status_code == 403


def test_can_access_event_only_assigned_for_hosts(session: Session) -> None:
    campaign = make_campaign(session)
    event_a, _ = make_event(session, campaign)
    event_b, _ = make_event(session, campaign)
    host = make_user(session, role=Role.host)
    session.add(EventHost(event_id=event_a.id, user_id=host.id))  # type: ignore[arg-type]
    session.commit()
    moderator = make_user(session, role=Role.moderator)
    assert can_access_event(host, event_a, session)
    assert not can_access_event(host, event_b, session)
    assert can_access_event(moderator, event_b, session)
    assert isinstance(session.get(Event, event_b.id), Event)
