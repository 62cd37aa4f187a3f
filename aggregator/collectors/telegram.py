"""Telegram bot collector: participants send photos to the campaign's bot.

Long-polls ``getUpdates`` with ``offset`` = last ``update_id`` + 1 kept in the cursor, so an
update is confirmed only once the ingest has committed the items (and the cursor) it produced.
Media are downloaded here, because the file URL contains the bot token: the token must never
reach a log line, an exception, a ``CollectedMedia.url`` or the database.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from aggregator.collectors.base import CollectedItem, CollectedMedia, CollectResult, SourceSpec
from aggregator.collectors.http import (
    BodyTooLarge,
    redact_text,
    request_bytes,
    request_json,
    retry_after_seconds,
)
from aggregator.collectors.telegram_parse import (
    MAX_FILE_BYTES,
    FileRef,
    ParsedMessage,
    Post,
    group_messages,
    parse_update,
)
from aggregator.config import LANGUAGE_CODES
from aggregator.errors import CollectorError, SourceConfigError

__all__ = [
    "TelegramApiError",
    "TelegramCollector",
    "install_log_redaction",
    "parse_update",
    "welcome_text",
]

logger = logging.getLogger(__name__)

DEFAULT_API = "https://api.telegram.org"
# Long-poll seconds; kept under the collector client's 10 s read timeout.
DEFAULT_POLL_TIMEOUT = 5
MAX_POLL_TIMEOUT = 8
PAGE_LIMIT = 100
# Album photos arrive as separate messages within a second or two; wait this long for the rest.
DEFAULT_ALBUM_GRACE = 10.0
MAX_MESSAGE_CHARS = 4096
_TOKEN_SHAPE = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$")
DEFAULT_WELCOME = {
    "en": "Hello! Send a photo of yourself holding your “We Remember” sign. "
    "A moderator will look at it before it is shown.",
    "ru": "Здравствуйте! Пришлите фото с табличкой «Мы помним». "
    "Перед показом его посмотрит модератор.",
    "kk": "Сәлеметсіз бе! «Біз еске аламыз» жазуы бар суретіңізді жіберіңіз. "
    "Көрсетпес бұрын оны модератор қарайды.",
}


class TelegramApiError(CollectorError):
    """A Bot API call answered ``ok: false``; ``error_code`` and ``parameters`` as sent."""

    def __init__(
        self,
        message: str,
        *,
        error_code: int,
        parameters: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.error_code = error_code
        self.parameters = dict(parameters or {})


class _RedactBotTokens(logging.Filter):
    """Rewrites log records that carry a Bot API URL (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = redact_text(message), None
        return True


def install_log_redaction() -> None:
    """Make the ``httpx`` logger drop bot tokens from URLs it logs (idempotent)."""
    target = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactBotTokens) for f in target.filters):
        target.addFilter(_RedactBotTokens())


def _token(source: SourceSpec) -> str:
    token = source.config.get("token")
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token.strip()):
        # Never echo the value: a mistyped token is still mostly a secret.
        raise SourceConfigError("Telegram source needs a bot token from @BotFather (123:ABC...)")
    return token.strip()


def _number(source: SourceSpec, key: str, default: float) -> float:
    try:
        return float(source.config.get(key, default))
    except (TypeError, ValueError):
        raise SourceConfigError(f"Telegram source setting {key!r} must be a number") from None


def _language(code: str) -> str:
    return code if code in LANGUAGE_CODES else "en"


def welcome_text(welcome: Mapping[str, str], language: str) -> str:
    """The greeting for /start in ``language``, falling back to English, then a built-in text."""
    for lang in (language, "en"):
        if welcome.get(lang):
            return welcome[lang]
    return DEFAULT_WELCOME.get(language) or DEFAULT_WELCOME["en"]


class _BotApi:
    """Bot API calls for one token; every error message is scrubbed of the token."""

    def __init__(self, http: httpx.AsyncClient, source: SourceSpec) -> None:
        self.http = http
        self.token = _token(source)
        base = source.config.get("url") or DEFAULT_API
        self.base = str(base).rstrip("/")

    def scrub(self, text: str) -> str:
        return redact_text(text.replace(self.token, "<redacted>"))

    async def call(self, method: str, payload: Mapping[str, Any]) -> Any:
        url = f"{self.base}/bot{self.token}/{method}"
        try:
            response, data = await request_json(self.http, "POST", url, json=dict(payload))
        except CollectorError as exc:
            raise CollectorError(self.scrub(exc.message), retry_after=exc.retry_after) from None
        if isinstance(data, dict) and data.get("ok") is True:
            return data.get("result")
        body = data if isinstance(data, dict) else {}
        code = body.get("error_code")
        code = code if isinstance(code, int) else response.status_code
        said = self.scrub(str(body.get("description") or f"HTTP {response.status_code}"))
        params: dict[str, Any] = (
            body["parameters"] if isinstance(body.get("parameters"), dict) else {}
        )
        if code in (401, 404):
            raise SourceConfigError(
                f"Telegram rejected the bot token ({said}); copy it again from @BotFather"
            )
        if code == 409:
            raise SourceConfigError(
                f"Telegram refused {method} ({said}). Only one program may poll a bot: stop "
                "the other instance using this token, or remove its webhook (deleteWebhook)."
            )
        if code == 429:
            wait = params.get("retry_after")
            seconds = float(wait) if isinstance(wait, int | float) else None
            seconds = seconds if seconds is not None else retry_after_seconds(response) or 30.0
            raise TelegramApiError(
                f"Telegram flood control on {method}: {said}",
                error_code=429,
                parameters=params,
                retry_after=seconds,
            )
        raise TelegramApiError(
            f"Telegram {method} failed: {said}", error_code=code, parameters=params
        )

    async def download(self, ref: FileRef) -> bytes | None:
        """The file's bytes, or None when Telegram will not serve it (too big, gone)."""
        try:
            info = await self.call("getFile", {"file_id": ref.file_id})
        except TelegramApiError as exc:
            if exc.error_code == 400:
                logger.warning("Telegram file %s skipped: %s", ref.file_unique_id, exc.message)
                return None
            raise
        path = info.get("file_path") if isinstance(info, dict) else None
        size = info.get("file_size") if isinstance(info, dict) else None
        if isinstance(size, int) and size > MAX_FILE_BYTES:
            return None
        if not isinstance(path, str) or not path or path.startswith("/"):
            # A local-mode Bot API server answers with a file system path we cannot fetch.
            logger.warning("Telegram file %s has no downloadable path", ref.file_unique_id)
            return None
        url = f"{self.base}/file/bot{self.token}/{urllib.parse.quote(path, safe='/')}"
        try:
            response, body = await request_bytes(self.http, "GET", url, max_bytes=MAX_FILE_BYTES)
        except BodyTooLarge:
            logger.warning("Telegram file %s is over 20 MB", ref.file_unique_id)
            return None
        except CollectorError as exc:
            raise CollectorError(self.scrub(exc.message), retry_after=exc.retry_after) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise CollectorError(
                f"Telegram file download failed (HTTP {response.status_code})",
                retry_after=retry_after_seconds(response),
            )
        if response.status_code != 200 or not body:
            logger.warning(
                "Telegram file %s not served (HTTP %s)", ref.file_unique_id, response.status_code
            )
            return None
        return body


class TelegramCollector:
    """Collects photos and image documents sent to a bot (private chats, groups, channels)."""

    kind: ClassVar[str] = "telegram"

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        install_log_redaction()

    async def collect(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        cursor: Mapping[str, Any] | None,
    ) -> CollectResult:
        """Fetch one page of updates, answer /start, return photo posts and the next offset."""
        api = _BotApi(http, source)
        bot_id = api.token.split(":", 1)[0]
        offset = None
        if cursor and cursor.get("bot_id") == bot_id and isinstance(cursor.get("offset"), int):
            # Update ids are per bot: an offset saved for another token would skip updates.
            offset = cursor["offset"]
        poll = max(
            0, min(int(_number(source, "poll_timeout", DEFAULT_POLL_TIMEOUT)), MAX_POLL_TIMEOUT)
        )
        payload: dict[str, Any] = {
            "limit": PAGE_LIMIT,
            "timeout": poll,
            "allowed_updates": ["message", "channel_post"],
        }
        if offset is not None:
            payload["offset"] = offset
        updates = await api.call("getUpdates", payload)
        if not isinstance(updates, list):
            raise CollectorError("Telegram getUpdates answered without a list of updates")
        updates = [
            u for u in updates if isinstance(u, dict) and isinstance(u.get("update_id"), int)
        ]
        if not updates:
            return CollectResult(items=[], cursor=None)
        grace = _number(source, "album_grace_seconds", DEFAULT_ALBUM_GRACE)
        full = len(updates) >= PAGE_LIMIT
        parsed = [parse_update(u) for u in updates]
        handled, resume = group_messages(
            parsed, now=self.clock(), grace_seconds=grace, page_full=full
        )
        items: list[CollectedItem] = []
        commands: list[ParsedMessage] = []
        for entry in handled:
            if isinstance(entry, Post):
                item = await self._item(api, entry)
                if item is not None:
                    items.append(item)
            else:
                commands.append(entry)
        # Greetings go last so a failed download (the run is retried) does not repeat them.
        for command in commands:
            await self._greet(api, source, command)
        next_offset = resume if resume is not None else updates[-1]["update_id"] + 1
        return CollectResult(
            items=items,
            cursor={"offset": next_offset, "bot_id": bot_id},
            more=full and resume is None,
        )

    async def _item(self, api: _BotApi, post: Post) -> CollectedItem | None:
        media: list[CollectedMedia] = []
        for ref in post.files:
            data = await api.download(ref)
            if data is not None:
                media.append(
                    CollectedMedia(
                        data=data, external_id=ref.file_unique_id, declared_type=ref.mime_type
                    )
                )
        head = post.head
        if not media:
            return None
        url = None
        if head.chat_username and head.chat_type in ("supergroup", "channel"):
            url = f"https://t.me/{head.chat_username}/{head.message_id}"
        reply = None
        if head.chat_type != "channel":
            # Replying in a channel would publish the receipt link to every subscriber.
            reply = {
                "chat_id": head.chat_id,
                "message_id": head.message_id,
                "language": _language(head.language),
                "chat_type": head.chat_type,
            }
        return CollectedItem(
            external_id=post.external_id,
            url=url,
            author_name=head.author_name,
            author_handle=head.author_handle,
            author_url=f"https://t.me/{head.author_handle}" if head.author_handle else None,
            text=head.caption,
            created_at=head.date,
            hashtags=head.hashtags,
            media=tuple(media),
            reply_context=reply,
        )

    async def _greet(self, api: _BotApi, source: SourceSpec, msg: ParsedMessage) -> None:
        text = welcome_text(source.welcome, _language(msg.language))
        try:
            await api.call("sendMessage", _message(msg.chat_id, msg.message_id, text))
        except SourceConfigError:
            raise
        except CollectorError as exc:
            # A user who blocked the bot must not stall everyone else's photos.
            logger.warning("Telegram greeting not sent: %s", exc.message)

    async def acknowledge(
        self,
        source: SourceSpec,
        *,
        http: httpx.AsyncClient,
        reply_context: Mapping[str, Any],
        text: str,
    ) -> None:
        """Reply to the participant's message (receipt link, consent text); errors propagate."""
        api = _BotApi(http, source)
        chat_id, message_id = reply_context.get("chat_id"), reply_context.get("message_id")
        if not isinstance(chat_id, int):
            raise CollectorError("Telegram reply context has no chat id")
        try:
            await api.call("sendMessage", _message(chat_id, message_id, text))
        except TelegramApiError as exc:
            migrated = exc.parameters.get("migrate_to_chat_id")
            if not isinstance(migrated, int):
                raise
            # The group became a supergroup: message ids there are new, so reply without a quote.
            await api.call("sendMessage", _message(migrated, None, text))


def _message(chat_id: Any, message_id: Any, text: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "chat_id": chat_id,
        "text": text[:MAX_MESSAGE_CHARS],
        "link_preview_options": {"is_disabled": True},
    }
    if isinstance(message_id, int):
        payload["reply_parameters"] = {
            "message_id": message_id,
            "allow_sending_without_reply": True,
        }
    return payload
