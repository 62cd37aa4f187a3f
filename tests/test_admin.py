"""Administration pages: campaigns (texts per language, rules), sources, people; validation
messages next to fields, CSRF and audit on every change, admins only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.models import AuditEntry, Campaign, LoginSession, Role, Rule, RuleKind, Source, User
from tests.factories import make_campaign, make_source, make_user
from tests.moderation_support import csrf, fresh_session, login


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


@pytest.fixture
def admin(client: TestClient, session: Session) -> User:
    """A logged-in administrator."""
    user = make_user(session, role=Role.admin)
    assert login(client, user.email).status_code == 303
    return user


def campaign_form(client: TestClient, **overrides: str) -> dict[str, str]:
    """A complete, valid campaign form."""
    return {
        "csrf_token": csrf(client),
        "slug": "alzhir-2026",
        "name": "ALZHIR: we remember",
        "description": "Photos for the memorial evening.",
        "sign_text": "We Remember",
        "hashtags": "#WeRemember, алжир",
        "language_en": "1",
        "language_ru": "1",
        "language_kk": "1",
        "consent_projection": "My photo may be projected at the memorial.",
        "t_ru_name": "АЛЖИР: мы помним",
        "t_ru_sign_text": "Мы помним",
        "t_kk_name": "АЛЖИР: біз еске аламыз",
        "t_kk_consent_projection": "Суретім еске алу кешінде көрсетілуі мүмкін.",
        "upload_opens_at": "2026-05-30T08:00",
        "upload_closes_at": "2026-06-01T20:00",
        "moderation_mode": "auto_trusted",
        "require_second_approval": "1",
        "rules_blocked_word": "отрицание\nжалған\nשקר",
        "rules_trusted_author": "@curator@museum.example",
        "rules_blocked_instance": "spam.example",
        **overrides,
    }


def audit_actions(session: Session) -> list[str]:
    """Every audit action, oldest first."""
    return [e.action for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))]


def test_create_and_edit_campaign(client: TestClient, session: Session, admin: User) -> None:
    assert client.get("/admin/campaigns/new").status_code == 200
    response = client.post(
        "/admin/campaigns/new", data=campaign_form(client), follow_redirects=False
    )
    assert response.status_code == 303, response.text
    campaign = session.exec(select(Campaign).where(Campaign.slug == "alzhir-2026")).one()
    assert campaign.hashtags == ["weremember", "алжир"]
    assert campaign.languages == ["en", "ru", "kk"]
    assert campaign.translations["ru"] == {"name": "АЛЖИР: мы помним", "sign_text": "Мы помним"}
    assert campaign.translations["kk"]["consent"]["projection"].startswith("Суретім")
    assert campaign.upload_opens_at is not None and campaign.upload_opens_at.hour == 8
    assert campaign.moderation_mode == "auto_trusted" and campaign.require_second_approval
    rules = {(r.kind, r.value) for r in session.exec(select(Rule))}
    assert (RuleKind.blocked_word, "שקר") in rules
    assert (RuleKind.trusted_author, "curator@museum.example") in rules
    page = client.get(f"/admin/campaigns/{campaign.id}")
    assert page.status_code == 200 and "АЛЖИР: мы помним" in page.text and "שקר" in page.text
    # Edit: one word fewer, a new name; the rule diff is audited.
    data = campaign_form(client, name="ALZHIR 2026", rules_blocked_word="отрицание")
    response = client.post(f"/admin/campaigns/{campaign.id}", data=data, follow_redirects=False)
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Campaign, campaign.id).name == "ALZHIR 2026"  # type: ignore[union-attr]
    words = [r.value for r in session.exec(select(Rule).where(Rule.kind == RuleKind.blocked_word))]
    assert words == ["отрицание"]
    actions = audit_actions(session)
    assert actions.count("campaign.create") == 1 and actions.count("campaign.update") == 1
    assert actions.count("rule.delete") == 2


def test_campaign_validation_messages_next_to_fields(
    client: TestClient, session: Session, admin: User
) -> None:
    make_campaign(session, slug="taken")
    data = campaign_form(
        client,
        slug="Bad Slug!",
        name="",
        hashtags="#ok #not-a-tag",
        upload_closes_at="2026-05-01T00:00",
        rules_blocked_instance="not a host",
    )
    data.pop("language_en"), data.pop("language_ru"), data.pop("language_kk")
    response = client.post("/admin/campaigns/new", data=data)
    assert response.status_code == 422
    html = response.text
    for field in ("slug", "name", "hashtags", "upload_closes_at"):
        assert f'id="{field}-error"' in html, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html, re.S), field
    assert "Choose at least one language." in html
    # Rules are checked after the fields: a bad rule line is reported on its own field.
    data = campaign_form(client, slug="fresh", rules_blocked_instance="not a host")
    response = client.post("/admin/campaigns/new", data=data)
    assert response.status_code == 422 and 'id="rules_blocked_instance-error"' in response.text
    response = client.post("/admin/campaigns/new", data=campaign_form(client, slug="taken"))
    assert response.status_code == 422 and 'id="slug-error"' in response.text
    assert session.exec(select(Campaign).where(Campaign.slug == "fresh")).first() is None
    # Russian page: messages in Russian.
    response = client.post("/admin/campaigns/new?lang=ru", data=campaign_form(client, name=""))
    assert response.status_code == 422


def test_admin_pages_require_admin_and_csrf(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    assert client.get("/admin/campaigns", follow_redirects=False).status_code == 303
    moderator = make_user(session, role=Role.moderator)
    login(client, moderator.email)
    assert client.get("/admin").status_code == 200  # the overview is for moderators too
    for path in (
        "/admin/campaigns",
        "/admin/sources",
        "/admin/users",
        f"/admin/campaigns/{campaign.id}",
    ):
        assert client.get(path).status_code == 403, path
    admin = make_user(session, role=Role.admin)
    login(client, admin.email)
    response = client.post(
        "/admin/campaigns/new", data={**campaign_form(client), "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert client.get("/admin/campaigns/999").status_code == 404


def test_sources_add_edit_pause_and_collect(
    client: TestClient, session: Session, admin: User
) -> None:
    campaign = make_campaign(session)
    token = csrf(client)
    bad = client.post(
        "/admin/sources/new",
        data={"csrf_token": token, "campaign_id": str(campaign.id), "kind": "rss", "interval": "5"},
    )
    assert bad.status_code == 422 and 'id="interval-error"' in bad.text
    bad = client.post(
        "/admin/sources/new",
        data={
            "csrf_token": token,
            "campaign_id": str(campaign.id),
            "kind": "rss",
            "interval": "300",
        },
    )
    assert bad.status_code == 422 and 'id="url-error"' in bad.text
    response = client.post(
        "/admin/sources/new",
        data={
            "csrf_token": token,
            "campaign_id": str(campaign.id),
            "kind": "telegram",
            "token": "123:SECRET-BOT-TOKEN",
            "hashtags": "#МыПомним",
            "interval": "120",
            "name": "Бот",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    source = session.exec(select(Source)).one()
    assert source.config["token"] == "123:SECRET-BOT-TOKEN"
    assert source.config["hashtags"] == ["мыпомним"]
    edit = client.get(f"/admin/sources/{source.id}")
    assert edit.status_code == 200 and "SECRET-BOT-TOKEN" not in edit.text
    client.post(
        f"/admin/sources/{source.id}",
        data={"csrf_token": token, "name": "Бот музея", "interval": "600", "token": ""},
    )
    session.expire_all()
    source = session.get(Source, source.id)  # type: ignore[assignment]
    assert source.name == "Бот музея" and source.interval_seconds == 600
    assert source.config["token"] == "123:SECRET-BOT-TOKEN"  # kept
    client.post(f"/admin/sources/{source.id}/pause", data={"csrf_token": token, "enabled": "0"})
    session.expire_all()
    assert session.get(Source, source.id).enabled is False  # type: ignore[union-attr]
    listing = client.get("/admin/sources")
    assert "SECRET" not in listing.text
    assert {"source.add", "source.update", "source.pause"} <= set(audit_actions(session))


def test_collect_now_runs_the_collector(
    client: TestClient, session: Session, admin: User, live_rss: str
) -> None:
    campaign = make_campaign(session)
    source = make_source(session, campaign, kind="rss", config={"url": live_rss}, name="Feed")
    response = client.post(
        f"/admin/sources/{source.id}/collect",
        data={"csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303  # the background task ran before TestClient returned
    session.expire_all()
    collected = session.get(Source, source.id)
    assert collected is not None and collected.last_run_at is not None
    assert "source.collect" in audit_actions(session)


@pytest.fixture
def live_rss() -> Iterator[str]:
    """A loopback RSS feed with no items (enough to prove the run happened)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.fakes.server import serve_app

    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<link>http://example.org/</link><description>d</description></channel></rss>"
    )

    async def rss(_request: Any) -> Response:
        return Response(feed, media_type="application/rss+xml")

    with serve_app(Starlette(routes=[Route("/feed.xml", rss)])) as base:
        yield f"{base}/feed.xml"


def test_people_invite_role_deactivate(client: TestClient, session: Session, admin: User) -> None:
    token = csrf(client)
    bad = client.post(
        "/admin/users", data={"csrf_token": token, "email": "nope", "role": "moderator"}
    )
    assert bad.status_code == 422 and 'id="email-error"' in bad.text
    response = client.post(
        "/admin/users", data={"csrf_token": token, "email": "Host@Example.org", "role": "host"}
    )
    assert response.status_code == 200
    link = re.search(r"http://testserver/invite/[\w-]+", response.text)
    assert link is not None
    invited = session.exec(select(User).where(User.email == "host@example.org")).one()
    assert invited.role == Role.host and invited.password_hash is None
    client.post(f"/admin/users/{invited.id}/role", data={"csrf_token": token, "role": "moderator"})
    session.expire_all()
    assert session.get(User, invited.id).role == Role.moderator  # type: ignore[union-attr]
    # Deactivation ends the person's sessions.
    other = make_user(session, role=Role.moderator)
    with TestClient(client.app, base_url="http://testserver") as second:
        login(second, other.email)
        assert second.get("/moderate").status_code == 200
        client.post(f"/admin/users/{other.id}/active", data={"csrf_token": token, "active": "0"})
        assert second.get("/moderate", follow_redirects=False).status_code == 303
    assert session.exec(select(LoginSession).where(LoginSession.user_id == other.id)).all() == []
    # Nobody locks themselves out.
    assert (
        client.post(
            f"/admin/users/{admin.id}/active", data={"csrf_token": token, "active": "0"}
        ).status_code
        == 409
    )
    assert (
        client.post(
            f"/admin/users/{admin.id}/role", data={"csrf_token": token, "role": "host"}
        ).status_code
        == 409
    )
    relink = client.post(f"/admin/users/{other.id}/invite", data={"csrf_token": token})
    assert "/invite/" in relink.text
    assert {"user.invite", "user.role", "user.deactivate", "user.reinvite"} <= set(
        audit_actions(session)
    )
