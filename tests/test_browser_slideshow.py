"""The slideshow in Chromium: it advances by itself, picks up approvals and takedowns without a
reload, obeys B and the host's blank, and the offline bundle plays from file://."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from aggregator.models import Event, SubmissionStatus
from aggregator.services.exports import export_event
from aggregator.services.moderation import transition
from aggregator.services.slideshows_control import apply_control
from tests.factories import make_campaign, make_event
from tests.slideshow_support import photo, take_down

pytestmark = pytest.mark.browser


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, message: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy (no fixed sleeps in assertions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message or condition}")


def _fast(session: Session, event: Event, **extra: Any) -> None:
    # One second per slide keeps the test short; hosts get 3–600 s through the form.
    event.settings = {**event.settings, "interval": 1, "transition": "none", **extra}
    session.add(event)
    session.commit()


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app on loopback; its engine's pooled connections are closed afterwards (uvicorn
    runs without lifespan here, so nothing else would close them)."""
    from tests.fakes.server import serve_app

    with serve_app(app) as base_url:
        yield base_url
    app.state.engine.dispose()


@pytest.fixture
def page(browser: Any, console_errors: Any) -> Iterator[Any]:
    """A 1280×720 page whose console errors are collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = console_errors.attach(context.new_page())
    try:
        yield page
    finally:
        context.close()


def state(page: Any) -> dict[str, Any]:
    """The slideshow's own view of what it holds and shows."""
    return dict(page.evaluate("window.wrSlideshow.state()"))


def test_live_slideshow_loops_updates_and_blanks(
    page: Any, live_server: str, session: Session, app: Any, console_errors: list[str]
) -> None:
    storage = app.state.storage
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    _fast(session, event)
    items = [photo(session, storage, campaign, author_name=f"Person {n}") for n in range(4)]
    pending = photo(session, storage, campaign, approve=False, author_name="Late")

    page.goto(f"{live_server}/show/{link.token}")
    seen: set[str] = set()

    def shown_several() -> bool:
        seen.add(state(page)["current"])
        return len(seen & {s.public_id for s in items}) >= 2

    wait_for(shown_several, message="the slideshow to advance by itself")
    image = page.locator(".slide--photo.is-active img")
    assert image.evaluate("img => img.naturalWidth") > 0
    assert image.get_attribute("alt")  # alt text in the DOM for screen readers

    # An approval while it runs: appears without a reload (queued to show next).
    transition(session=session, submission_id=pending.id, to=SubmissionStatus.approved)  # type: ignore[arg-type]
    wait_for(lambda: state(page)["current"] == pending.public_id, message="the new approval")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

    # A takedown: pause the host side so nothing is mid-preload, remove one that is neither
    # showing nor preloaded, and it leaves the loop.
    apply_control(session=session, event_id=event.id, action="pause")  # type: ignore[arg-type]
    wait_for(lambda: state(page)["paused"], message="the host's pause")
    busy = {state(page)["current"], page.locator("#stage").get_attribute("data-preload")}
    victim = next(s for s in items if s.public_id not in busy)
    take_down(session, victim)
    wait_for(lambda: victim.public_id not in state(page)["items"], message="the takedown")
    apply_control(session=session, event_id=event.id, action="resume")  # type: ignore[arg-type]

    # B blanks this screen; the host's blank reaches it over the event stream.
    page.keyboard.press("b")
    assert page.locator(".stage__blank").is_visible()
    page.keyboard.press("b")
    assert not page.locator(".stage__blank").is_visible()
    apply_control(session=session, event_id=event.id, action="blank")  # type: ignore[arg-type]
    wait_for(lambda: page.locator(".stage__blank").is_visible(), message="the host's blank")
    apply_control(session=session, event_id=event.id, action="unblank")  # type: ignore[arg-type]
    wait_for(lambda: not page.locator(".stage__blank").is_visible(), message="unblank")
    assert console_errors == []


def test_removing_the_photo_on_screen_moves_on(
    page: Any, live_server: str, session: Session, app: Any, console_errors: list[str]
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    _fast(session, event)
    items = [photo(session, app.state.storage, campaign) for _ in range(3)]
    page.goto(f"{live_server}/show/{link.token}")
    wait_for(lambda: state(page)["kind"] == "photo", message="a photo")
    apply_control(session=session, event_id=event.id, action="pause")  # type: ignore[arg-type]
    wait_for(lambda: state(page)["paused"], message="the host's pause")
    showing = state(page)["current"]
    take_down(session, next(s for s in items if s.public_id == showing))
    wait_for(lambda: state(page)["current"] not in {showing, ""}, message="moving on")
    assert showing not in state(page)["items"]
    assert console_errors == []


def test_help_pause_and_silence(
    page: Any, live_server: str, session: Session, app: Any, console_errors: list[str]
) -> None:
    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    _fast(session, event, silence_seconds=30)
    photo(session, app.state.storage, campaign)
    page.goto(f"{live_server}/show/{link.token}")
    wait_for(lambda: state(page)["kind"] == "photo", message="a photo")
    page.keyboard.press("?")
    assert page.locator(".stage__help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("p")
    assert state(page)["paused"]
    page.keyboard.press("p")
    apply_control(session=session, event_id=event.id, action="silence")  # type: ignore[arg-type]
    wait_for(lambda: state(page)["kind"] == "silence", message="the moment of silence")
    assert page.locator(".text__timer").is_visible()
    apply_control(session=session, event_id=event.id, action="end_silence")  # type: ignore[arg-type]
    wait_for(lambda: state(page)["kind"] == "photo", message="the end of the silence")
    assert console_errors == []


def test_offline_bundle_plays_from_file(
    page: Any, session: Session, app: Any, tmp_path: Path, console_errors: list[str]
) -> None:
    campaign = make_campaign(session)
    event, _link = make_event(session, campaign)
    _fast(session, event, intro={"title": "Мы помним", "text": ""})
    items = [photo(session, app.state.storage, campaign, city="Алматы") for _ in range(3)]
    path = export_event(
        session=session,
        storage=app.state.storage,
        settings=app.state.settings,
        event=event,
        fmt="bundle",
        out_path=tmp_path / "show.zip",
    ).path
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    index = next((tmp_path / "unzipped").glob("*/index.html"))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(index.as_uri())
    assert state(page)["mode"] == "offline"
    seen: set[str] = set()

    def advanced() -> bool:
        current = state(page)["current"]
        if current in {s.public_id for s in items}:
            width = page.locator(".slide--photo.is-active img").evaluate("i => i.naturalWidth")
            assert width > 0
            seen.add(current)
        return len(seen) >= 2

    wait_for(advanced, message="the bundle to show two photos")
    assert all(url.startswith("file://") for url in requests), requests
    assert console_errors == []


def test_control_page_drives_the_screens_without_reloading(
    page: Any,
    browser: Any,
    live_server: str,
    session: Session,
    app: Any,
    console_errors: list[str],
) -> None:
    from aggregator.models import Role, utcnow
    from tests.factories import PASSWORD, make_user

    campaign = make_campaign(session)
    event, link = make_event(session, campaign)
    _fast(session, event)
    pinned = photo(session, app.state.storage, campaign, author_name="Пётр")
    pinned.pinned_at = utcnow()
    session.add(pinned)
    session.commit()
    for _ in range(2):
        photo(session, app.state.storage, campaign)
    host = make_user(session, Role.moderator)
    screen = console_errors.attach(browser.new_page(viewport={"width": 960, "height": 540}))
    try:
        screen.goto(f"{live_server}/show/{link.token}")
        wait_for(lambda: state(screen)["kind"] == "photo", message="the screen to start")
        page.goto(f"{live_server}/login")
        page.fill("input[name=email]", host.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live_server}/admin/events/{event.id}/control")
        navigations = page.evaluate("performance.getEntriesByType('navigation').length")
        page.click("button[value=blank]")
        page.locator('[data-flag="blank"]').wait_for(state="visible")
        wait_for(lambda: state(screen)["blank"], message="the screen to blank")
        page.click("button[value=unblank]")
        wait_for(lambda: not state(screen)["blank"], message="the screen to show again")
        wait_for(lambda: state(screen)["current"] != pinned.public_id, message="another photo")
        page.click("button.pinned-button")
        wait_for(lambda: state(screen)["current"] == pinned.public_id, message="the jump")
        assert page.evaluate("performance.getEntriesByType('navigation').length") == navigations
        assert page.url.endswith("/control")
        # The screen reported itself: the list shows it within one refresh.
        page.locator(".screens-table tbody tr.screen-ok").first.wait_for(timeout=15000)
    finally:
        screen.close()
    assert console_errors == []
