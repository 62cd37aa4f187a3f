"""Chromium: a moderator logs in, approves three photos with the keyboard only, rejects one
with a reason, undoes it, bulk-approves a selection and logs out; no console errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.media import process_image
from aggregator.models import AuditEntry, Origin, Role, Submission, SubmissionStatus
from aggregator.services.ingest import Incoming, IncomingImage, ingest
from tests.factories import PASSWORD, jpeg_bytes, make_campaign, make_user
from tests.moderation_support import fresh_session

S = SubmissionStatus
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core in the page (evaluate is not subject to the page's CSP)."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm install` in the repository root")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))"
    )
    return list(result)


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


def _photos(app: Any, session: Session, count: int) -> list[int]:
    campaign = make_campaign(session)
    ids = []
    for n in range(count):
        image = process_image(jpeg_bytes(320, 240, (40 * n % 255, 90, 120)))
        result = ingest(
            session=session,
            storage=app.state.storage,
            campaign=campaign,
            incoming=Incoming(
                origin=Origin.upload,
                images=[IncomingImage(image, alt_text=f"Photo {n}")],
                author_name=f"Участник {n}",
                text=f"Мы помним #{n}",
                consent=["projection"],
            ),
        )
        ids.append(int(result.submission.id or 0))
    return ids


@pytest.mark.browser
def test_keyboard_moderation(
    browser: Any, live_server: str, app: Any, session: Session, console_errors: Any
) -> None:
    ids = _photos(app, session, 6)
    moderator = make_user(session, role=Role.moderator, display_name="Анна")
    context = browser.new_context(locale="ru-RU")
    page = console_errors.attach(context.new_page())
    try:
        page.goto(f"{live_server}/moderate")
        page.wait_for_url("**/login?next=/moderate")
        page.fill("#email", moderator.email)
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url("**/moderate")
        page.wait_for_selector(f"#card-{ids[0]}.is-current")
        assert axe_violations(page) == []

        def status(item: int) -> str:
            return str(page.get_attribute(f"#card-{item}", "data-status"))

        def wait_status(item: int, wanted: str) -> None:
            page.wait_for_selector(f'#card-{item}[data-status="{wanted}"]')

        # Three approvals, keyboard only: each moves on to the next pending card.
        for item in ids[:3]:
            page.wait_for_selector(f"#card-{item}.is-current")
            page.keyboard.press("a")
            wait_status(item, "approved")
        # Reject the fourth with a reason typed into the inline dialog.
        page.wait_for_selector(f"#card-{ids[3]}.is-current")
        page.keyboard.press("r")
        page.wait_for_selector("#reject-dialog[open]")
        page.keyboard.type("Не по теме")
        page.keyboard.press("Enter")
        wait_status(ids[3], "rejected")
        # Undo it: pending again.
        page.keyboard.press("u")
        wait_status(ids[3], "pending")
        # Select the fourth and the fifth, then approve the selection.
        page.wait_for_selector(f"#card-{ids[3]}.is-current")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.wait_for_selector(f"#card-{ids[4]}.is-current")
        page.keyboard.press("x")
        assert page.is_checked(f"#select-{ids[4]}")
        page.keyboard.press("Shift+A")
        wait_status(ids[3], "approved")
        wait_status(ids[4], "approved")
        assert status(ids[5]) == "pending"
        # The help dialog opens with ? and closes with Escape.
        page.keyboard.press("?")
        page.wait_for_selector("#help-dialog[open]")
        page.keyboard.press("Escape")
        # Log out: the queue is closed again.
        page.click(".logout-form button")
        page.wait_for_url("**/login")
        page.goto(f"{live_server}/moderate")
        page.wait_for_url("**/login?next=/moderate")
    finally:
        context.close()
        app.state.engine.dispose()  # live_server runs without lifespan: close the pool here
    assert console_errors == []
    statuses = {
        s.id: s.status for s in session.exec(select(Submission).where(col(Submission.id).in_(ids)))
    }
    assert [statuses[i] for i in ids] == [S.approved] * 5 + [S.pending]
    reasons = [
        (e.to_status, e.reason)
        for e in session.exec(
            select(AuditEntry)
            .where(AuditEntry.submission_id == ids[3], AuditEntry.action == "transition")
            .order_by(col(AuditEntry.id))
        )
    ]
    assert reasons == [("rejected", "Не по теме"), ("pending", "undo"), ("approved", "")]


@pytest.mark.browser
def test_admin_pages_are_accessible(
    browser: Any, live_server: str, app: Any, session: Session, console_errors: Any
) -> None:
    from tests.factories import make_source

    _photos(app, session, 2)
    campaign = make_campaign(session, require_second_approval=True)
    make_source(session, campaign, name="mastodon.social", last_error="HTTP 503")
    admin = make_user(session, role=Role.admin)
    context = browser.new_context(locale="kk-KZ")
    page = console_errors.attach(context.new_page())
    try:
        page.goto(f"{live_server}/login")
        page.fill("#email", admin.email)
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url("**/moderate")
        for path in (
            "/admin",
            "/admin/campaigns",
            f"/admin/campaigns/{campaign.id}",
            "/admin/campaigns/new",
            "/admin/sources",
            "/admin/sources/new",
            "/admin/users",
            "/login?lang=he",
        ):
            page.goto(live_server + path)
            assert axe_violations(page) == [], path
        # A form with errors keeps its messages next to the fields, still accessible.
        page.goto(f"{live_server}/admin/campaigns/new?lang=ru")
        page.fill("#slug", "Bad Slug")
        page.click("form.admin-form button[type=submit]")
        page.wait_for_selector("#slug-error")
        assert axe_violations(page) == []
    finally:
        context.close()
        app.state.engine.dispose()
    # Chromium logs the deliberate 422 of the invalid form; nothing else may appear.
    assert [e for e in console_errors if "status of 422" not in e] == []
