"""A fake Telegram Bot API (api.telegram.org) as described in reference/sources.md §4.

``/bot<token>/<method>`` answers ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code", "description", "parameters"?}`` with the HTTP status equal to ``error_code``;
``/file/bot<token>/<file_path>`` serves downloads. Implemented: getUpdates (offset confirms,
limit, sticky allowed_updates, the two 409 conflicts, 429 flood control), getFile (400 above
20 MB), sendMessage (403 blocked, 400 group migrated) and deleteWebhook. Messages are built
from the recorded payloads in ``tests/data`` with caption entities in UTF-16 code units.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DATA = Path(__file__).resolve().parent.parent / "data"
TOO_BIG = 20 * 1024 * 1024
_TAG = re.compile(r"(?<![\w#])#(\w+)")
ERRORS = json.loads((DATA / "telegram_getFile_and_errors.json").read_text())


def recorded(name: str) -> dict[str, Any]:
    """A recorded payload from tests/data (``telegram_<name>.json``)."""
    value: dict[str, Any] = json.loads((DATA / f"telegram_{name}.json").read_text())
    return value


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram offsets use."""
    return len(text.encode("utf-16-le")) // 2


def hashtag_entities(text: str) -> list[dict[str, Any]]:
    """``caption_entities`` of type hashtag as Telegram computes them (UTF-16 offsets)."""
    return [
        {"offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0)), "type": "hashtag"}
        for m in _TAG.finditer(text)
    ]


def jpeg_bytes(tag: str) -> bytes:
    """Distinct bytes that start like a JPEG (the collector never decodes them)."""
    return b"\xff\xd8\xff\xe0" + tag.encode() + b"\x00" * 64 + b"\xff\xd9"


def _fail(code: int, description: str, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


@dataclass
class FakeTelegram:
    """State of the fake Bot API server; ``app`` is the ASGI application."""

    token: str = "123456789:AAE-secret-token_abcdefghijklmnopqr"
    webhook_url: str | None = None
    other_poller: bool = False
    flood_retry_after: int | None = None
    blocked_chats: set[int] = field(default_factory=set)
    migrated: dict[int, int] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    allowed_updates: list[str] | None = None
    next_update_id: int = 940961600
    next_message_id: int = 100

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[Route("/{rest:path}", self._dispatch, methods=["GET", "POST"])]
        )

    # -- building data ------------------------------------------------------------------------

    def push(self, message: dict[str, Any], kind: str = "message") -> int:
        """Queue an Update carrying ``message``; returns its update_id."""
        self.next_update_id += 1
        self.updates.append({"update_id": self.next_update_id, kind: message})
        return self.next_update_id

    def add_file(self, size: dict[str, Any], *, data: bytes | None = None) -> None:
        """Make a PhotoSize or Document downloadable."""
        self.files[size["file_id"]] = {
            "file_id": size["file_id"],
            "file_unique_id": size["file_unique_id"],
            "file_size": size.get("file_size", 0),
            "file_path": f"photos/file_{len(self.files)}.jpg",
            "data": data if data is not None else jpeg_bytes(size["file_unique_id"]),
        }

    def photo_message(
        self,
        *,
        chat_id: int = 8679559480,
        chat_type: str = "private",
        caption: str | None = None,
        media_group_id: str | None = None,
        language_code: str = "en",
        date: int = 1776048066,
        username: str | None = None,
        chat_username: str | None = None,
        largest_size: int | None = None,
    ) -> dict[str, Any]:
        """A photo message shaped like the recorded private one, its files registered."""
        message = copy.deepcopy(recorded("message_photo_private"))
        self.next_message_id += 1
        message["message_id"] = self.next_message_id
        message["date"] = date
        message["from"]["language_code"] = language_code
        if username:
            message["from"]["username"] = username
        message["chat"] = {"id": chat_id, "type": chat_type, "first_name": "Mayel"}
        if chat_type != "private":
            message["chat"] = {"id": chat_id, "type": chat_type, "title": "Memorial group"}
        if chat_username:
            message["chat"]["username"] = chat_username
        for n, size in enumerate(message["photo"]):
            size["file_id"] = f"{size['file_id'][:40]}-{self.next_message_id}-{n}"
            size["file_unique_id"] = f"{size['file_unique_id']}-{self.next_message_id}-{n}"
        if largest_size is not None:
            message["photo"][-1]["file_size"] = largest_size
        for size in message["photo"]:
            self.add_file(size)
        if caption is not None:
            message["caption"] = caption
            message["caption_entities"] = hashtag_entities(caption)
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        return message

    def text_message(
        self, text: str, *, language_code: str = "ru", chat_id: int = 42
    ) -> dict[str, Any]:
        """A text message from a private chat (commands such as /start)."""
        envelope = recorded("getUpdates_envelope_voice")
        message: dict[str, Any] = copy.deepcopy(envelope["result"][0]["message"])
        del message["voice"]
        self.next_message_id += 1
        message.update(message_id=self.next_message_id, text=text)
        message["chat"]["id"] = chat_id
        message["from"]["language_code"] = language_code
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
        return message

    # -- the ASGI side ------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        if path.startswith("/file/bot"):
            token, _, file_path = path[len("/file/bot") :].partition("/")
            if token != self.token:
                return _fail(404, "Not Found")
            return self._download(file_path)
        if not path.startswith("/bot"):
            return _fail(404, "Not Found")
        token, _, method = path[len("/bot") :].partition("/")
        if ":" not in token:
            return _fail(404, "Not Found")
        if token != self.token:
            return _fail(401, "Unauthorized")
        params = await _params(request)
        self.calls.append((method, params))
        handler = {
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
            "sendMessage": self._send_message,
            "deleteWebhook": self._delete_webhook,
        }.get(method)
        if handler is None:
            return _fail(404, "Not Found")
        if self.flood_retry_after is not None:
            wait, self.flood_retry_after = self.flood_retry_after, None
            return _fail(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        return handler(params)

    def _get_updates(self, params: dict[str, Any]) -> Response:
        if self.webhook_url:
            return JSONResponse(ERRORS["webhook_conflict_409"], status_code=409)
        if self.other_poller:
            return JSONResponse(ERRORS["conflict_409"], status_code=409)
        if params.get("allowed_updates") is not None:
            self.allowed_updates = list(params["allowed_updates"])
        offset = int(params.get("offset", 0) or 0)
        if offset < 0:
            self.updates = self.updates[offset:]
        elif offset:
            # An offset confirms every update before it: they are gone for good.
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        limit = max(1, min(int(params.get("limit", 100)), 100))
        wanted = self.allowed_updates or ["message", "channel_post", "edited_message"]
        result = [u for u in self.updates if any(k in u for k in wanted)][:limit]
        return JSONResponse({"ok": True, "result": result})

    def _get_file(self, params: dict[str, Any]) -> Response:
        info = self.files.get(str(params.get("file_id")))
        if info is None:
            return _fail(400, "Bad Request: invalid file_id")
        if info["file_size"] > TOO_BIG:
            return JSONResponse(ERRORS["getFile_too_big_400"], status_code=400)
        result = {k: v for k, v in info.items() if k != "data"}
        return JSONResponse({"ok": True, "result": result})

    def _download(self, file_path: str) -> Response:
        self.downloads.append(file_path)
        for info in self.files.values():
            if info["file_path"] == file_path:
                return Response(info["data"], media_type="image/jpeg")
        return _fail(404, "Not Found")

    def _send_message(self, params: dict[str, Any]) -> Response:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked_chats:
            return _fail(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.migrated:
            return _fail(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        if not params.get("text"):
            return _fail(400, "Bad Request: message text is empty")
        self.sent.append(params)
        self.next_message_id += 1
        message = {
            "message_id": self.next_message_id,
            "from": {"id": 123456789, "is_bot": True, "first_name": "We Remember"},
            "chat": {"id": chat_id, "type": "private"},
            "date": 1776048100,
            "text": params["text"],
        }
        return JSONResponse({"ok": True, "result": message})

    def _delete_webhook(self, params: dict[str, Any]) -> Response:
        self.webhook_url = None
        return JSONResponse({"ok": True, "result": True, "description": "Webhook was deleted"})


async def _params(request: Request) -> dict[str, Any]:
    # The Bot API takes query strings, url-encoded or multipart forms, or a JSON body; in forms
    # nested values (reply_parameters, allowed_updates) are JSON-serialised strings.
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        kind = request.headers.get("content-type", "")
        if kind.startswith("application/json"):
            params.update(await request.json())
        elif kind:
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in ("allowed_updates", "reply_parameters"):
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params
