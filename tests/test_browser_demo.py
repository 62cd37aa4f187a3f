"""Every page the demo prints opens in Chromium without a console error."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.config import Settings
from aggregator.demo import build_demo
from tests.conftest import ConsoleErrors

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(settings: Settings) -> Any:
    return build_demo(settings)


def test_every_demo_page_opens_cleanly(
    demo: Any, app: Any, live_server: str, browser: Any, console_errors: ConsoleErrors
) -> None:
    page = console_errors.attach(browser.new_page(viewport={"width": 1280, "height": 800}))
    slug = demo.campaign_slug
    public = ["/", f"/c/{slug}", f"/c/{slug}/gallery", f"/c/{slug}/feed.xml", "/docs"]
    for path in public:
        response = page.goto(live_server + path)
        assert response is not None and response.status == 200, path
    page.goto(live_server + "/docs")
    page.wait_for_selector(".opblock", timeout=15000)  # the API documentation really renders
    show = demo.share_link.replace(demo.base_url, live_server)
    response = page.goto(show)
    assert response is not None and response.status == 200
    page.wait_for_timeout(1500)  # let the slideshow load its first slides

    page.goto(live_server + "/moderate")
    assert "/login" in page.url  # staff pages need an account
    page.fill("input[name=email]", demo.admin_email)
    page.fill("input[name=password]", demo.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/moderate**")
    for path in ["/moderate", "/admin"]:
        response = page.goto(live_server + path)
        assert response is not None and response.status == 200, path
    page.close()
    assert list(console_errors) == []
