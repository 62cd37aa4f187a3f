"""The gallery, the embed strip and the wall layout in Chromium: a phone-sized gallery with
lazy thumbnails and no accessibility violations (axe-core), the embed inside another site's
iframe, and the wall picking up a new approval and a takedown without a reload."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from starlette.responses import Response

from aggregator.models import ShareLink
from aggregator.services.takedown import take_down
from tests.factories import make_campaign, make_event
from tests.gallery_support import real_photo

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
T0 = datetime(2025, 1, 27, 12, 0, tzinfo=UTC)


def wait_for(condition: Callable[[], Any], timeout: float = 25.0, message: str = "") -> Any:
    """Poll ``condition`` until it is truthy (no fixed sleeps in assertions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message or condition}")


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
def phone(browser: Any, console_errors: Any) -> Iterator[Any]:
    """A phone-sized page (390×844, touch, 2× pixels) whose console errors are collected."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="ru-RU",
    )
    page = console_errors.attach(context.new_page())
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def desktop(browser: Any, console_errors: Any) -> Iterator[Any]:
    """A 1280×720 page (a projector) whose console errors are collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = console_errors.attach(context.new_page())
    try:
        yield page
    finally:
        context.close()


def test_gallery_on_a_phone(
    phone: Any, live_server: str, session: Session, app: Any, console_errors: list[str]
) -> None:
    campaign = make_campaign(session, slug="phone-gallery", name="Мы помним")
    for n in range(27):
        real_photo(
            session,
            app.state.storage,
            campaign,
            author_name=f"Человек {n}",
            city="Алматы" if n % 2 else "Астана",
            posted_at=T0 + timedelta(minutes=n),
            alt=f"Человек {n} держит табличку «Мы помним».",
        )
    response = phone.goto(f"{live_server}/c/{campaign.slug}/gallery")
    assert response is not None and response.status == 200
    assert phone.evaluate("document.documentElement.lang") == "ru"
    tiles = phone.locator(".gallery-tile img")
    assert tiles.count() == 24
    assert tiles.evaluate_all("imgs => imgs.every(i => i.loading === 'lazy' && i.width > 0)")
    # Two columns that fit the screen: nothing scrolls sideways.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    boxes = [tiles.nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and boxes[1] and boxes[0]["y"] == boxes[1]["y"]
    assert boxes[0]["width"] + boxes[1]["width"] < 390
    wait_for(
        lambda: tiles.first.evaluate("i => i.complete && i.naturalWidth > 0"),
        message="the first thumbnail to load",
    )
    assert tiles.first.evaluate("i => getComputedStyle(i).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert axe_violations(phone) == []

    phone.get_by_role("link", name="Более ранние фотографии").click()
    phone.wait_for_url("**before=**")
    assert phone.locator(".gallery-tile").count() == 3

    phone.locator(".gallery-tile a").first.click()
    phone.wait_for_url("**/p/**")
    image = phone.locator(".photo-figure img")
    wait_for(lambda: image.evaluate("i => i.naturalWidth > 0"), message="the photo to load")
    assert image.get_attribute("alt", timeout=1000).startswith("Человек 2")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(phone) == []

    phone.goto(f"{live_server}/c/{campaign.slug}/gallery")
    phone.locator(".gallery-filter-box summary").click()
    phone.get_by_label("Город или община").fill("алматы")
    phone.get_by_role("button", name="Показать").click()
    phone.wait_for_url("**city=**")
    assert phone.locator(".gallery-tile").count() == 13
    assert phone.locator(".gallery-filter-box").get_attribute("open") is not None
    assert console_errors == []


def test_embed_inside_another_sites_iframe(
    desktop: Any, live_server: str, session: Session, app: Any, console_errors: list[str]
) -> None:
    campaign = make_campaign(session, slug="embedded")
    for n in range(3):
        real_photo(session, app.state.storage, campaign, author_name=f"P{n}")
    # The partner page is served from another origin (localhost vs 127.0.0.1: both loopback,
    # so Chromium's local-network checks allow the frame; the origins still differ).
    embed_url = f"{live_server}/c/{campaign.slug}/embed"
    assert "127.0.0.1" in embed_url

    @app.get("/_test/partner")  # type: ignore[untyped-decorator]
    def partner_page() -> Response:
        body = (
            "<!doctype html><html lang=en><head><title>Partner</title>"
            '<link rel="icon" href="data:,"></head><body>'
            f'<iframe src="{embed_url}" title="We Remember" width="800" height="260">'
            "</iframe></body></html>"
        )
        return Response(
            body,
            media_type="text/html",
            headers={"Content-Security-Policy": "default-src 'self' data:; frame-src *"},
        )

    desktop.goto(live_server.replace("127.0.0.1", "localhost") + "/_test/partner")
    assert desktop.evaluate("location.origin") != live_server
    frame = desktop.frame_locator("iframe")
    images = frame.locator(".embed-strip img")
    wait_for(lambda: images.count() == 3, message="the embed strip inside the iframe")
    wait_for(
        lambda: images.first.evaluate("i => i.complete && i.naturalWidth > 0"),
        message="an embedded thumbnail to load",
    )
    assert frame.locator("a[target=_blank]").count() >= 4
    desktop.goto(embed_url)
    assert axe_violations(desktop) == []
    assert console_errors == []


def _wall_link(session: Session, link: ShareLink) -> None:
    link.layout = "wall"
    session.add(link)
    session.commit()


def wall_state(page: Any) -> dict[str, Any]:
    """The wall's own view of what it shows."""
    return dict(page.evaluate("window.wrWall ? window.wrWall.state() : {items: []}"))


def test_wall_picks_up_approvals_and_takedowns_without_reload(
    desktop: Any, live_server: str, session: Session, app: Any, console_errors: list[str]
) -> None:
    storage = app.state.storage
    campaign = make_campaign(session, slug="wall")
    event, link = make_event(session, campaign)
    event.settings = {**event.settings, "interval": 3, "qr_every": 5}
    session.add(event)
    session.commit()
    _wall_link(session, link)
    shown = [
        real_photo(session, storage, campaign, author_name=f"Person {n}", posted_at=T0)
        for n in range(5)
    ]

    desktop.goto(f"{live_server}/show/{link.token}")
    wait_for(lambda: len(wall_state(desktop)["items"]) >= 5, message="the wall to fill")
    state = wall_state(desktop)
    assert state["columns"] == 3
    assert set(state["items"]) == {s.public_id for s in shown}
    tile = desktop.locator(".wall-tile img").first
    wait_for(lambda: tile.evaluate("i => i.naturalWidth > 0"), message="a tile image to load")
    assert tile.get_attribute("alt")
    assert desktop.locator(".wall__qr img").get_attribute("src")  # the join-in QR code
    assert desktop.evaluate(
        "document.documentElement.scrollHeight <= window.innerHeight + 1"
    )  # the wall fills the screen, it never scrolls

    # End the test session's read snapshot: the screens' heartbeats have written since, and
    # SQLite refuses to turn a stale read transaction into a write.
    session.rollback()
    late = real_photo(session, storage, campaign, author_name="Late arrival", posted_at=T0)
    wait_for(
        lambda: late.public_id in wall_state(desktop)["items"],
        message="the new approval to appear on the wall",
    )
    session.rollback()
    take_down(
        session=session,
        storage=storage,
        submission_id=shown[0].id,  # type: ignore[arg-type]
        actor_id=None,
        actor_label="test",
    )
    wait_for(
        lambda: shown[0].public_id not in wall_state(desktop)["items"],
        message="the takedown to leave the wall",
    )

    desktop.keyboard.press("b")
    assert desktop.locator(".wall__blank").is_visible()
    desktop.keyboard.press("b")
    assert not desktop.locator(".wall__blank").is_visible()
    desktop.keyboard.press("?")
    assert desktop.locator(".wall__help").is_visible()
    desktop.keyboard.press("Escape")
    desktop.keyboard.press("p")
    assert wall_state(desktop)["paused"] is True
    desktop.keyboard.press("p")
    assert json.dumps(console_errors) == "[]"
