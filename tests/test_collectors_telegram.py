"""Telegram bot collector against a fake Bot API (tests/fakes/telegram.py).

Every Telegram gotcha of reference/sources.md §4 has a test here: largest PhotoSize, image
documents, albums as separate messages (also split across getUpdates pages), UTF-16 entity
offsets, the 20 MB getFile limit, 409/429/401 bodies, offset confirmation, and the bot token
never leaking into errors, logs or returned data.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from aggregator.collectors.base import CollectResult, SourceSpec
from aggregator.collectors.http import make_api_client
from aggregator.collectors.telegram import TelegramCollector
from aggregator.collectors.telegram_parse import (
    group_messages,
    hashtags_from_entities,
    parse_update,
    utf16_slice,
)
from aggregator.errors import CollectorError, SourceConfigError
from tests.fakes.server import serve_app
from tests.fakes.telegram import FakeTelegram, hashtag_entities, jpeg_bytes, recorded

API = "http://telegram.test"
WELCOME = {"en": "Welcome! Send your photo.", "ru": "Пришлите фото.", "kk": "Суретті жіберіңіз."}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
async def http(fake: FakeTelegram) -> AsyncIterator[httpx.AsyncClient]:
    async with make_api_client(transport=httpx.ASGITransport(app=fake.app)) as client:
        yield client


def source_for(fake: FakeTelegram, **config: Any) -> SourceSpec:
    cfg = {"token": fake.token, "url": API, "poll_timeout": 0, **config}
    return SourceSpec(id=7, kind="telegram", config=cfg, welcome=WELCOME)


def collector_at(when: datetime | None = None) -> TelegramCollector:
    now = when or datetime(2026, 5, 1, tzinfo=UTC)
    return TelegramCollector(clock=lambda: now)


async def collect(
    fake: FakeTelegram, http: httpx.AsyncClient, cursor: Any = None, **kw: Any
) -> CollectResult:
    return await collector_at(kw.pop("now", None)).collect(
        source_for(fake, **kw), http=http, cursor=cursor
    )


# -- parsing ----------------------------------------------------------------------------------


def test_utf16_offsets_with_emoji_and_cyrillic() -> None:
    caption = "🕯️ Помним 👨‍👩‍👧 #МыПомним и #WeRemember 🇰🇿 #БізЕскеАламыз"
    entities = hashtag_entities(caption)
    # A naive str slice is off: emoji outside the BMP count as two UTF-16 units.
    first = entities[0]
    assert caption[first["offset"] : first["offset"] + first["length"]] != "#МыПомним"
    assert utf16_slice(caption, first["offset"], first["length"]) == "#МыПомним"
    assert hashtags_from_entities(caption, entities) == ("МыПомним", "WeRemember", "БізЕскеАламыз")


def test_hashtags_ignore_other_entities_and_dedupe_case_insensitively() -> None:
    caption = "#WeRemember https://example.org #weremember"
    entities = [
        *hashtag_entities(caption),
        {"offset": 12, "length": 19, "type": "url"},
    ]
    assert hashtags_from_entities(caption, entities) == ("WeRemember",)


def test_recorded_group_update_takes_largest_photo() -> None:
    update = recorded("update_group_photo_caption")
    parsed = parse_update(update)
    assert parsed.kind == "photo"
    assert parsed.chat_type == "group"
    assert parsed.caption == "wwww111"
    assert parsed.files[0].file_id == update["message"]["photo"][-1]["file_id"]
    assert parsed.author_name == "鲁班九号"
    assert parsed.author_handle == "luban1990"
    assert parsed.language == "zh"


def test_recorded_voice_update_is_ignored() -> None:
    update = recorded("getUpdates_envelope_voice")["result"][0]
    assert parse_update(update).kind == "ignored"


def test_photo_over_20_mb_falls_back_to_a_smaller_size() -> None:
    message = recorded("message_photo_private")
    message["photo"][-1]["file_size"] = 25 * 1024 * 1024
    parsed = parse_update({"update_id": 1, "message": message})
    assert parsed.files[0].file_id == message["photo"][-2]["file_id"]


def test_full_page_holds_back_an_album_at_its_end() -> None:
    album = recorded("message_album_media_group")
    parsed = [parse_update({"update_id": 10 + n, "message": album}) for n in range(2)]
    now = datetime(2030, 1, 1, tzinfo=UTC)  # long after the album: only page_full holds it
    handled, resume = group_messages(parsed, now=now, grace_seconds=10, page_full=True)
    assert (handled, resume) == ([], 10)
    handled, resume = group_messages(parsed, now=now, grace_seconds=10, page_full=False)
    assert resume is None and len(handled) == 1


# -- collecting -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_private_photo_becomes_an_item(fake: FakeTelegram, http: httpx.AsyncClient) -> None:
    message = fake.photo_message(caption="Мы помним 🕯️ #МыПомним #WeRemember", language_code="ru")
    update_id = fake.push(message)
    result = await collect(fake, http)
    [item] = result.items
    chat_id = message["chat"]["id"]
    assert item.external_id == f"{chat_id}:{message['message_id']}"
    assert item.url is None
    assert item.author_name == "Mayel Espino"
    assert item.text == "Мы помним 🕯️ #МыПомним #WeRemember"
    assert item.hashtags == ("МыПомним", "WeRemember")
    assert item.created_at == datetime.fromtimestamp(message["date"], UTC)
    [media] = item.media
    largest = message["photo"][-1]
    assert media.url is None
    assert media.data == jpeg_bytes(largest["file_unique_id"])
    assert media.external_id == largest["file_unique_id"]
    assert item.reply_context == {
        "chat_id": chat_id,
        "message_id": message["message_id"],
        "language": "ru",
        "chat_type": "private",
    }
    assert result.cursor == {"offset": update_id + 1, "bot_id": "123456789"}
    assert result.more is False
    method, params = fake.calls[0]
    assert method == "getUpdates" and params["timeout"] == 0
    assert params["allowed_updates"] == ["message", "channel_post"]


@pytest.mark.anyio
async def test_image_document_is_collected_and_other_documents_ignored(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    base = fake.text_message("x")
    del base["text"]
    png = {"file_id": "DOC1", "file_unique_id": "U-DOC1", "file_size": 5000}
    pdf = {"file_id": "DOC2", "file_unique_id": "U-DOC2", "file_size": 5000}
    fake.add_file(png, data=b"\x89PNG\r\n\x1a\n-doc")
    fake.add_file(pdf)
    fake.push({**base, "document": {**png, "mime_type": "image/png", "file_name": "me.png"}})
    fake.push({**base, "message_id": 999, "document": {**pdf, "mime_type": "application/pdf"}})
    result = await collect(fake, http)
    [item] = result.items
    assert item.media[0].declared_type == "image/png"
    assert item.media[0].data == b"\x89PNG\r\n\x1a\n-doc"


@pytest.mark.anyio
async def test_album_becomes_one_item_with_the_album_caption(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    messages = [fake.photo_message(media_group_id="13879658689810906") for _ in range(3)]
    messages[1]["caption"] = "Бабушка 👵 #МыПомним"
    messages[1]["caption_entities"] = hashtag_entities(messages[1]["caption"])
    for message in messages:
        fake.push(message)
    result = await collect(fake, http)
    [item] = result.items
    chat_id = messages[0]["chat"]["id"]
    assert item.external_id == f"{chat_id}:album:13879658689810906"
    assert item.text == "Бабушка 👵 #МыПомним"
    assert item.hashtags == ("МыПомним",)
    assert len(item.media) == 3
    assert item.reply_context is not None
    assert item.reply_context["message_id"] == messages[1]["message_id"]


@pytest.mark.anyio
async def test_album_split_across_two_getupdates_pages(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    date = 1776048066
    when = datetime.fromtimestamp(date, UTC) + timedelta(seconds=2)
    parts = [fake.photo_message(media_group_id="55", date=date) for _ in range(3)]
    parts[0]["caption"] = "#WeRemember"
    parts[0]["caption_entities"] = hashtag_entities("#WeRemember")
    first = fake.push(parts[0])
    fake.push(parts[1])
    early = await collect(fake, http, now=when)
    # The album may still be arriving: nothing yet, and its updates stay unconfirmed.
    assert early.items == []
    assert early.cursor == {"offset": first, "bot_id": "123456789"}
    fake.push(parts[2])
    later = await collect(fake, http, early.cursor, now=when + timedelta(seconds=30))
    [item] = later.items
    assert len(item.media) == 3 and item.text == "#WeRemember"
    assert len({m.external_id for m in item.media}) == 3


@pytest.mark.anyio
async def test_message_from_same_chat_after_album_completes_it(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    date = 1776048066
    parts = [fake.photo_message(media_group_id="77", date=date) for _ in range(2)]
    for part in parts:
        fake.push(part)
    fake.push(fake.photo_message(date=date))  # same chat, not in the album
    result = await collect(fake, http, now=datetime.fromtimestamp(date, UTC))
    assert [len(i.media) for i in result.items] == [2, 1]


@pytest.mark.anyio
async def test_rerun_returns_nothing_new_and_an_uncommitted_run_loses_nothing(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.push(fake.photo_message(caption="#WeRemember"))
    fake.push(fake.photo_message())
    first = await collect(fake, http)
    assert len(first.items) == 2
    # The ingest crashed before committing: the old cursor is used again, nothing is lost.
    again = await collect(fake, http, None)
    assert [i.external_id for i in again.items] == [i.external_id for i in first.items]
    committed = await collect(fake, http, again.cursor)
    assert committed.items == [] and committed.cursor is None
    assert fake.updates == []  # the offset confirmed them on the server


@pytest.mark.anyio
async def test_offset_of_another_bot_is_not_reused(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.push(fake.photo_message())
    result = await collect(fake, http, {"offset": 10**12, "bot_id": "999"})
    assert len(result.items) == 1
    assert "offset" not in fake.calls[0][1]


@pytest.mark.anyio
async def test_full_page_asks_for_more(fake: FakeTelegram, http: httpx.AsyncClient) -> None:
    for _ in range(101):
        fake.push(fake.text_message("hello"))
    result = await collect(fake, http)
    assert result.more is True
    assert result.cursor is not None
    assert result.cursor["offset"] == fake.updates[100]["update_id"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("command", "language", "expected"),
    [
        ("/start", "ru", WELCOME["ru"]),
        ("/start campaign-27", "kk", WELCOME["kk"]),
        ("/help@WeRememberBot", "en-US", WELCOME["en"]),
        ("/start", "de", WELCOME["en"]),
    ],
)
async def test_start_and_help_answer_in_the_sender_language(
    fake: FakeTelegram, http: httpx.AsyncClient, command: str, language: str, expected: str
) -> None:
    message = fake.text_message(command, language_code=language)
    fake.push(message)
    result = await collect(fake, http)
    assert result.items == []
    [sent] = fake.sent
    assert sent["text"] == expected
    assert sent["chat_id"] == message["chat"]["id"]
    assert sent["reply_parameters"]["message_id"] == message["message_id"]


@pytest.mark.anyio
async def test_greeting_to_a_blocked_user_does_not_stop_collection(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.blocked_chats.add(42)
    fake.push(fake.text_message("/start", chat_id=42))
    fake.push(fake.photo_message())
    result = await collect(fake, http)
    assert len(result.items) == 1


@pytest.mark.anyio
async def test_file_too_big_for_getfile_is_skipped(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    message = fake.photo_message()
    del message["photo"][-1]["file_size"]  # the size is only known to the server
    fake.files[message["photo"][-1]["file_id"]]["file_size"] = 21 * 1024 * 1024
    fake.push(message)
    result = await collect(fake, http)
    assert result.items == []
    assert result.cursor is not None  # the update is consumed, not retried forever


@pytest.mark.anyio
async def test_download_is_capped_at_20_mb(fake: FakeTelegram, http: httpx.AsyncClient) -> None:
    message = fake.photo_message()
    fake.files[message["photo"][-1]["file_id"]]["data"] = b"\xff" * (20 * 1024 * 1024 + 1)
    fake.push(message)
    assert (await collect(fake, http)).items == []


@pytest.mark.anyio
async def test_public_supergroup_and_channel_links(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    group = fake.photo_message(chat_id=-1001, chat_type="supergroup", chat_username="memorial")
    channel = fake.photo_message(chat_id=-1002, chat_type="channel", chat_username="alzhir")
    del channel["from"]
    fake.push(group)
    fake.push(channel, kind="channel_post")
    grouped, posted = (await collect(fake, http)).items
    assert grouped.url == f"https://t.me/memorial/{group['message_id']}"
    assert grouped.reply_context is not None
    assert posted.url == f"https://t.me/alzhir/{channel['message_id']}"
    assert posted.author_name == "Memorial group" and posted.author_handle == "alzhir"
    assert posted.reply_context is None  # a reply would publish the receipt to the channel


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_conflict_with_another_poller_is_a_config_error(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.other_poller = True
    with pytest.raises(SourceConfigError, match="only one bot instance"):
        await collect(fake, http)


@pytest.mark.anyio
async def test_conflict_with_a_webhook_names_deletewebhook(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.webhook_url = "https://example.org/hook"
    with pytest.raises(SourceConfigError, match="deleteWebhook"):
        await collect(fake, http)


@pytest.mark.anyio
async def test_flood_control_retry_after_comes_from_the_body(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.flood_retry_after = 5
    with pytest.raises(CollectorError) as caught:
        await collect(fake, http)
    assert not isinstance(caught.value, SourceConfigError)
    assert caught.value.retry_after == 5


@pytest.mark.anyio
@pytest.mark.parametrize("token", ["123456789:AAE-wrong-token_abcdefghijklmnopqr", "not-a-token"])
async def test_bad_token_is_a_config_error(
    fake: FakeTelegram, http: httpx.AsyncClient, token: str
) -> None:
    with pytest.raises(SourceConfigError) as caught:
        await collect(fake, http, token=token)
    assert token not in str(caught.value)


@pytest.mark.anyio
async def test_bad_setting_is_a_config_error(fake: FakeTelegram, http: httpx.AsyncClient) -> None:
    with pytest.raises(SourceConfigError, match="poll_timeout"):
        await collect(fake, http, poll_timeout="soon")


# -- the token stays secret -------------------------------------------------------------------


def _everything(exc: BaseException) -> str:
    chain = "".join(traceback.format_exception(exc))
    return f"{exc}\n{exc!r}\n{chain}\n{getattr(exc, 'message', '')}"


@pytest.fixture
def failing_transports(fake: FakeTelegram) -> Iterator[dict[str, httpx.AsyncBaseTransport]]:
    async def html(scope: Any, receive: Any, send: Any) -> None:
        # An HTML page (a captive portal or proxy) that echoes the requested URL back.
        page = f"<html>{scope['path']}</html>".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": page})

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out on {request.url}", request=request)

    yield {
        "html": httpx.ASGITransport(app=html),
        "refused": httpx.MockTransport(refuse),
        "timeout": httpx.MockTransport(slow),
    }


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["html", "refused", "timeout"])
async def test_token_absent_from_transport_errors(
    fake: FakeTelegram, failing_transports: dict[str, httpx.AsyncBaseTransport], kind: str
) -> None:
    async with make_api_client(transport=failing_transports[kind]) as client:
        with pytest.raises(CollectorError) as caught:
            await collect(fake, client)
    text = _everything(caught.value)
    assert fake.token not in text
    assert fake.token.split(":")[1] not in text


@pytest.mark.anyio
@pytest.mark.parametrize("setup", ["other_poller", "webhook_url", "flood_retry_after"])
async def test_token_absent_from_api_errors(
    fake: FakeTelegram, http: httpx.AsyncClient, setup: str
) -> None:
    setattr(fake, setup, 3 if setup == "flood_retry_after" else True)
    with pytest.raises(CollectorError) as caught:
        await collect(fake, http)
    assert fake.token.split(":")[1] not in _everything(caught.value)


@pytest.mark.anyio
async def test_token_absent_from_logs_results_and_cursor(
    fake: FakeTelegram, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    message = fake.photo_message(caption="#WeRemember")
    fake.push(message)
    big = fake.photo_message()
    fake.files[big["photo"][-1]["file_id"]]["file_size"] = 21 * 1024 * 1024
    del big["photo"][-1]["file_size"]
    fake.push(big)
    result = await collect(fake, http)
    assert fake.downloads  # the file URL with the token was really used
    secret = fake.token.split(":")[1]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/bot<redacted>/getUpdates" in logged  # httpx request lines are rewritten
    assert secret not in logged
    assert secret not in repr(result)
    assert secret not in json.dumps(result.cursor)
    assert all(m.url is None for i in result.items for m in i.media)


# -- acknowledge ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_acknowledge_replies_to_the_message(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    context = {"chat_id": 42, "message_id": 17, "language": "ru"}
    await collector_at().acknowledge(
        source_for(fake), http=http, reply_context=context, text="Спасибо! https://x/r/abc"
    )
    [sent] = fake.sent
    assert sent["chat_id"] == 42
    assert sent["reply_parameters"] == {"message_id": 17, "allow_sending_without_reply": True}
    assert sent["text"] == "Спасибо! https://x/r/abc"


@pytest.mark.anyio
async def test_acknowledge_follows_a_group_migration(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.migrated[-4663428801] = -1004663428801
    context = {"chat_id": -4663428801, "message_id": 6217, "language": "en"}
    await collector_at().acknowledge(source_for(fake), http=http, reply_context=context, text="ok")
    [sent] = fake.sent
    assert sent["chat_id"] == -1004663428801 and "reply_parameters" not in sent


@pytest.mark.anyio
async def test_acknowledge_to_a_blocked_user_raises_a_transient_error(
    fake: FakeTelegram, http: httpx.AsyncClient
) -> None:
    fake.blocked_chats.add(42)
    context = {"chat_id": 42, "message_id": 1, "language": "en"}
    with pytest.raises(CollectorError, match="blocked") as caught:
        await collector_at().acknowledge(
            source_for(fake), http=http, reply_context=context, text="ok"
        )
    assert not isinstance(caught.value, SourceConfigError)


# -- real HTTP --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_collect_over_real_http(fake: FakeTelegram) -> None:
    fake.push(fake.text_message("/start", language_code="kk"))
    message = fake.photo_message(caption="Біз еске аламыз #БізЕскеАламыз", language_code="kk")
    fake.push(message)
    with serve_app(fake.app) as base_url:
        async with make_api_client() as client:
            source = source_for(fake, url=base_url)
            result = await collector_at().collect(source, http=client, cursor=None)
            await collector_at().acknowledge(
                source, http=client, reply_context=result.items[0].reply_context or {}, text="ok"
            )
    [item] = result.items
    assert item.hashtags == ("БізЕскеАламыз",)
    assert item.media[0].data == jpeg_bytes(message["photo"][-1]["file_unique_id"])
    assert [s["text"] for s in fake.sent] == [WELCOME["kk"], "ok"]
