"""Tell someone when photos wait too long for a moderator: a JSON POST to a webhook and/or an
e-mail over SMTP. ``notify_waiting`` is a plain job function for the scheduler (every minute
is fine: a shared rate counter sends at most one alert per ``pending_alert_minutes``)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import httpx
from anyio.to_thread import run_sync
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.errors import TooManyRequests
from aggregator.models import Submission, SubmissionStatus, utcnow
from aggregator.services.ratelimit import hit

log = logging.getLogger(__name__)

ALERT_KEY = "alert:pending-waiting"
TIMEOUT = 10.0


@dataclass
class AlertReport:
    """What one run found and sent."""

    waiting: int = 0
    oldest_minutes: int = 0
    sent: list[str] = field(default_factory=list)  # "webhook", "email"
    errors: list[str] = field(default_factory=list)


def _waiting(engine: Engine, minutes: int, now: datetime) -> tuple[int, datetime | None]:
    with Session(engine) as session:
        count, oldest = session.exec(
            select(func.count(), func.min(col(Submission.created_at))).where(
                col(Submission.status) == SubmissionStatus.pending,
                col(Submission.created_at) < now - timedelta(minutes=minutes),
            )
        ).one()
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
    elif isinstance(oldest, datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return int(count), oldest


def _claim_slot(engine: Engine, window_seconds: int) -> bool:
    """True for the first caller in this window (across every worker process)."""
    with Session(engine) as session:
        try:
            hit(session, ALERT_KEY, 1, window_seconds)
        except TooManyRequests:
            return False
    return True


def message_text(settings: Settings, waiting: int, oldest_minutes: int) -> str:
    """The alert in plain words (English: it goes to the organisers' tools)."""
    return (
        f"{waiting} photo(s) have waited more than {settings.pending_alert_minutes} minutes "
        f"for a moderator; the oldest for {oldest_minutes} minutes. "
        f"Queue: {settings.public_base_url.rstrip('/')}/moderate"
    )


def send_email(settings: Settings, subject: str, body: str) -> None:
    """Send one plain-text e-mail through ``smtp_url`` (smtp:// with STARTTLS if offered,
    or smtps://) to ``alert_email``."""
    if not settings.smtp_url or not settings.alert_email:
        raise ValueError("SMTP is not configured")
    url = urlsplit(settings.smtp_url)
    host = url.hostname or "localhost"
    secure = url.scheme == "smtps"
    port = url.port or (465 if secure else 25)
    user = unquote(url.username) if url.username else None
    password = unquote(url.password) if url.password else None
    sender_host = urlsplit(settings.public_base_url).hostname or "localhost"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = user if user and "@" in user else f"We Remember <noreply@{sender_host}>"
    message["To"] = settings.alert_email
    message.set_content(body)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if secure:
        client = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=TIMEOUT)
    with client:
        client.ehlo()
        if not secure and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if user and password:
            client.login(user, password)
        client.send_message(message)


async def notify_waiting(
    settings: Settings,
    engine: Engine,
    *,
    http: httpx.AsyncClient | None = None,
    now: datetime | None = None,
) -> AlertReport | None:
    """Alert when items wait longer than ``pending_alert_minutes``; None when nothing to do.

    Failures are logged and reported, never raised: a job must not crash the scheduler.
    """
    minutes = settings.pending_alert_minutes
    if minutes <= 0 or not (
        settings.alert_webhook_url or (settings.smtp_url and settings.alert_email)
    ):
        return None
    now = now or utcnow()
    waiting, oldest = await run_sync(lambda: _waiting(engine, minutes, now))
    if waiting == 0 or oldest is None:
        return None
    if not await run_sync(lambda: _claim_slot(engine, minutes * 60)):
        return None
    report = AlertReport(waiting, int((now - oldest).total_seconds() // 60))
    text = message_text(settings, report.waiting, report.oldest_minutes)
    if settings.alert_webhook_url:
        payload = {
            "event": "pending_waiting",
            "waiting": report.waiting,
            "oldest_minutes": report.oldest_minutes,
            "threshold_minutes": minutes,
            "queue_url": f"{settings.public_base_url.rstrip('/')}/moderate",
            "text": text,
        }
        own = http is None
        client = http or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        try:
            response = await client.post(settings.alert_webhook_url, json=payload, timeout=TIMEOUT)
            response.raise_for_status()
            report.sent.append("webhook")
        except httpx.HTTPError as exc:
            log.warning("pending alert webhook failed: %s", type(exc).__name__)
            report.errors.append(f"webhook: {type(exc).__name__}")
        finally:
            if own:
                await client.aclose()
    if settings.smtp_url and settings.alert_email:
        try:
            await run_sync(lambda: send_email(settings, "We Remember: photos are waiting", text))
            report.sent.append("email")
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            log.warning("pending alert e-mail failed: %s", type(exc).__name__)
            report.errors.append(f"email: {type(exc).__name__}")
    return report
