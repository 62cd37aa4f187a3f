"""The application shell: health, headers, errors, languages, packaging."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_security_headers_on_every_page(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_csrf_cookie_is_http_only_and_same_site(client: TestClient) -> None:
    cookie = client.get("/").headers["set-cookie"]
    assert "csrftoken=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_unknown_page_is_a_calm_404_page(client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Page not found" in response.text
    assert "Traceback" not in response.text


def test_unknown_api_path_is_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "http_404"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("ru-RU,ru;q=0.9,en;q=0.5", "ru"), ("kk,ru;q=0.8", "kk"), ("de-DE", "en"), ("he", "he")],
)
def test_language_from_accept_language(client: TestClient, header: str, expected: str) -> None:
    html = client.get("/", headers={"Accept-Language": header}).text
    assert f'<html lang="{expected}"' in html


def test_language_switch_is_remembered_and_hebrew_is_rtl(client: TestClient) -> None:
    response = client.get("/?lang=he")
    assert 'dir="rtl"' in response.text
    assert "lang=he" in response.headers["set-cookie"]
    again = client.get("/", headers={"Accept-Language": "ru"})
    assert '<html lang="he" dir="rtl"' in again.text


def test_garbage_cookie_and_language_do_not_break_pages(client: TestClient) -> None:
    response = client.get("/?lang=%00%ff", headers={"Cookie": 'lang="\\x00; csrftoken=;;;'})
    assert response.status_code == 200


def test_russian_front_page_is_translated(client: TestClient) -> None:
    html = client.get("/?lang=ru").text
    assert "Мы помним" in html


def test_no_request_could_match_routes_of_two_routers() -> None:
    """The routers are mounted with the participant's upload first (``routes/__init__.py``),
    which is only safe while the order decides nothing: a request for any route's path and
    method matches routes of its own router alone."""
    import re

    from starlette.routing import Match

    from aggregator.web.routes import ALL_ROUTERS

    def owners(method: str, path: str) -> set[int]:
        scope = {"type": "http", "path": path, "method": method, "root_path": ""}
        return {
            index
            for index, router in enumerate(ALL_ROUTERS)
            for route in router.routes
            if route.matches(scope)[0] == Match.FULL
        }

    checked = 0
    for index, router in enumerate(ALL_ROUTERS):
        for route in router.routes:
            path = re.sub(r"\{[^}]+\}", "1", route.path)  # type: ignore[attr-defined]
            for method in route.methods or {"GET"}:  # type: ignore[attr-defined]
                assert owners(method, path) == {index}, (method, route.path)  # type: ignore[attr-defined]
                checked += 1
    assert checked > 50
