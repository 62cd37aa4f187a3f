"""The admin overview (per-day chart, per source/status, queue age, source health) and the
waiting-items alert over a real loopback webhook and a small SMTP server."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from aggregator.config import Settings
from aggregator.models import Role, SubmissionStatus, utcnow
from aggregator.services import dashboard
from aggregator.services.alerts import notify_waiting
from tests.conftest import make_settings
from tests.factories import make_campaign, make_source, make_submission, make_user
from tests.moderation_support import fresh_session, login

S = SubmissionStatus


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


def test_per_day_counts_and_chart(session: Session) -> None:
    campaign = make_campaign(session)
    now = utcnow()
    for days_ago, n in ((0, 3), (2, 1), (40, 5)):
        for _ in range(n):
            make_submission(session, campaign, created_at=now - timedelta(days=days_ago), media=0)
    days = dashboard.per_day(session)
    assert len(days) == 30 and days[-1].day == now.date()
    assert days[-1].count == 3 and days[-3].count == 1 and sum(d.count for d in days) == 4
    chart = dashboard.chart(days)
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.count == 3 and tallest.y == pytest.approx(10.0)
    assert all(b.height == 0 for b in chart.bars if b.count == 0)


def test_pending_stats_table_and_health(session: Session) -> None:
    campaign = make_campaign(session)
    source = make_source(session, campaign, name="Mastodon")
    make_source(session, campaign, name="Paused", enabled=False)
    make_source(session, campaign, name="Broken", last_run_at=utcnow(), last_error="HTTP 500")
    make_submission(
        session, campaign, source_id=source.id, created_at=utcnow() - timedelta(minutes=90)
    )
    make_submission(session, campaign, source_id=source.id, status=S.approved)
    make_submission(session, campaign, status=S.rejected, origin="upload")
    stats = dashboard.pending(session)
    assert (
        stats.count == 1 and stats.oldest_minutes is not None and 89 <= stats.oldest_minutes <= 91
    )
    table = dict(dashboard.by_source_and_status(session))
    assert table["Mastodon"] == {"pending": 1, "approved": 1}
    assert table["upload"] == {"rejected": 1}
    states = {h.source.name: h.state for h in dashboard.source_health(session)}
    assert states == {"Mastodon": "never", "Paused": "paused", "Broken": "failing"}


def test_dashboard_page(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    make_submission(session, campaign)
    moderator = make_user(session, role=Role.moderator)
    login(client, moderator.email)
    page = client.get("/admin")
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="bar"' in page.text
    assert 'id="pending-count">1<' in page.text
    assert client.get("/admin?lang=kk").status_code == 200


# -- alerts ---------------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[Any]]]:
    """A loopback webhook receiver; yields its URL and the JSON bodies it got."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.fakes.server import serve_app

    received: list[Any] = []

    async def hook(request: Request) -> Response:
        received.append(await request.json())
        return Response(status_code=204)

    with serve_app(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield f"{base}/hook", received


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message (no TLS, no auth)."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        data: list[bytes] = []
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    self.server.messages.append(b"".join(data))  # type: ignore[attr-defined]
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(line)
                continue
            command = line[:4].upper()
            if command in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif command == b"DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback SMTP server; yields its port and the raw messages."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], server.messages  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.mark.anyio
async def test_alert_sent_once_per_window(
    tmp_path: Any,
    database_url: str,
    engine: Engine,
    session: Session,
    webhook: tuple[str, list[Any]],
    smtp_server: tuple[int, list[bytes]],
) -> None:
    url, received = webhook
    port, messages = smtp_server
    settings = make_settings(
        tmp_path,
        database_url,
        pending_alert_minutes=30,
        alert_webhook_url=url,
        smtp_url=f"smtp://127.0.0.1:{port}",
        alert_email="moderators@example.org",
    )
    campaign = make_campaign(session)
    make_submission(session, campaign, created_at=utcnow() - timedelta(minutes=10))
    assert await notify_waiting(settings, engine) is None  # nothing has waited 30 minutes
    make_submission(session, campaign, created_at=utcnow() - timedelta(minutes=45))
    report = await notify_waiting(settings, engine)
    assert report is not None and report.sent == ["webhook", "email"] and not report.errors
    assert received[0]["waiting"] == 1 and received[0]["oldest_minutes"] >= 45
    assert received[0]["queue_url"] == "http://testserver/moderate"
    assert (
        b"moderators@example.org" in messages[0] and b"waited more than 30 minutes" in messages[0]
    )
    assert await notify_waiting(settings, engine) is None  # once per window, across workers
    assert len(received) == 1


@pytest.mark.anyio
async def test_alert_failures_are_reported_not_raised(
    tmp_path: Any, database_url: str, engine: Engine, session: Session
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        pending_alert_minutes=1,
        alert_webhook_url="http://127.0.0.1:9/hook",  # discard port: connection refused
    )
    make_submission(session, make_campaign(session), created_at=utcnow() - timedelta(minutes=5))
    report = await notify_waiting(settings, engine)
    assert report is not None and report.sent == [] and report.errors[0].startswith("webhook")
    disabled = make_settings(tmp_path, database_url)
    assert await notify_waiting(disabled, engine) is None
