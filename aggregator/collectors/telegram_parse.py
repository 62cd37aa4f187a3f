"""Pure parsing of Telegram Bot API updates, shared by the polling collector and a webhook.

Nothing here does I/O: ``parse_update`` turns one Update into a ``ParsedMessage`` and
``group_messages`` folds albums (one message per photo, sharing ``media_group_id``) into one
post, holding back albums that may still be arriving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

# Bots may download files up to 20 MB through the cloud Bot API (getFile answers 400 above).
MAX_FILE_BYTES = 20 * 1024 * 1024
# Telegram albums hold at most 10 media.
MAX_ALBUM_MEDIA = 10
COMMANDS = frozenset({"start", "help"})


@dataclass(frozen=True)
class FileRef:
    """One downloadable image: a photo's largest usable size or an image document."""

    file_id: str
    file_unique_id: str
    file_size: int | None
    mime_type: str | None


@dataclass(frozen=True)
class ParsedMessage:
    """What the aggregator needs from one Update; ``kind`` is photo, command or ignored."""

    update_id: int
    kind: str
    chat_id: int | None = None
    chat_type: str | None = None
    chat_username: str | None = None
    chat_title: str | None = None
    message_id: int | None = None
    date: datetime | None = None
    media_group_id: str | None = None
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    files: tuple[FileRef, ...] = ()
    author_name: str = ""
    author_handle: str | None = None
    language: str = "en"
    command: str | None = None


@dataclass(frozen=True)
class Post:
    """One submission: a single photo message or a whole album."""

    external_id: str
    messages: tuple[ParsedMessage, ...]

    @property
    def head(self) -> ParsedMessage:
        """The message carrying the caption (albums put it on one message), else the first."""
        return next((m for m in self.messages if m.caption), self.messages[0])

    @property
    def files(self) -> tuple[FileRef, ...]:
        """All images of the post in message order, at most ten."""
        return tuple(f for m in self.messages for f in m.files)[:MAX_ALBUM_MEDIA]


def utf16_slice(text: str, offset: int, length: int) -> str:
    """Cut ``text`` by UTF-16 code units, the unit of Telegram entity offsets."""
    units = text.encode("utf-16-le")
    return units[2 * offset : 2 * (offset + length)].decode("utf-16-le", errors="replace")


def hashtags_from_entities(text: str, entities: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Hashtags (without '#') marked by ``hashtag`` entities, de-duplicated case-insensitively."""
    seen: dict[str, str] = {}
    for entity in entities:
        if entity.get("type") != "hashtag":
            continue
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            continue
        tag = utf16_slice(text, offset, length).lstrip("#").strip()
        if tag:
            seen.setdefault(tag.casefold(), tag)
    return tuple(seen.values())


def sender_language(user: Mapping[str, Any] | None) -> str:
    """The primary subtag of the sender's ``language_code`` ("pt-br" → "pt"), default "en"."""
    code = (user or {}).get("language_code")
    if not isinstance(code, str) or not code:
        return "en"
    return code.split("-")[0].lower()


def _largest_photo(sizes: Sequence[Mapping[str, Any]]) -> FileRef | None:
    # Sizes come ascending, but pick by area so an odd order cannot shrink the image; skip sizes
    # a bot is not allowed to download.
    usable = [
        s
        for s in sizes
        if isinstance(s.get("file_id"), str)
        and (not isinstance(s.get("file_size"), int) or s["file_size"] <= MAX_FILE_BYTES)
    ]
    if not usable:
        return None
    best = max(usable, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0))
    return FileRef(
        file_id=best["file_id"],
        file_unique_id=str(best.get("file_unique_id") or best["file_id"]),
        file_size=best.get("file_size"),
        mime_type="image/jpeg",
    )


def _image_document(doc: Mapping[str, Any]) -> FileRef | None:
    mime = doc.get("mime_type")
    if not isinstance(mime, str) or not mime.startswith("image/"):
        return None
    size = doc.get("file_size")
    if not isinstance(doc.get("file_id"), str) or (isinstance(size, int) and size > MAX_FILE_BYTES):
        return None
    return FileRef(
        file_id=doc["file_id"],
        file_unique_id=str(doc.get("file_unique_id") or doc["file_id"]),
        file_size=size if isinstance(size, int) else None,
        mime_type=mime,
    )


def _command(text: str) -> str | None:
    # "/start", "/start payload" and "/start@SomeBot" in groups all count.
    if not text.startswith("/"):
        return None
    name = text[1:].split(maxsplit=1)[0].split("@")[0].lower() if len(text) > 1 else ""
    return name if name in COMMANDS else None


def parse_update(update: Mapping[str, Any]) -> ParsedMessage:
    """Classify one Update: a photo submission, a /start or /help command, or ignored."""
    update_id = int(update.get("update_id", 0))
    message = update.get("message") or update.get("channel_post")
    if not isinstance(message, Mapping) or not isinstance(message.get("chat"), Mapping):
        return ParsedMessage(update_id=update_id, kind="ignored")
    chat: Mapping[str, Any] = message["chat"]
    user = message.get("from") if isinstance(message.get("from"), Mapping) else None
    if user is not None:
        names = (user.get("first_name"), user.get("last_name"))
        author = " ".join(n for n in names if isinstance(n, str) and n).strip()
        handle = user.get("username")
    else:
        # Channel posts have no sender; the channel speaks.
        author, handle = str(chat.get("title") or ""), chat.get("username")
    base = ParsedMessage(
        update_id=update_id,
        kind="ignored",
        chat_id=chat.get("id"),
        chat_type=chat.get("type"),
        chat_username=chat.get("username"),
        chat_title=chat.get("title"),
        message_id=message.get("message_id"),
        date=datetime.fromtimestamp(message["date"], UTC)
        if isinstance(message.get("date"), int)
        else None,
        author_name=author or (handle if isinstance(handle, str) else "") or "Telegram user",
        author_handle=handle if isinstance(handle, str) else None,
        language=sender_language(user),
    )
    if not isinstance(base.chat_id, int) or not isinstance(base.message_id, int):
        return base
    files: list[FileRef] = []
    if isinstance(message.get("photo"), list):
        photo = _largest_photo(message["photo"])
        files += [photo] if photo else []
    if isinstance(message.get("document"), Mapping):
        doc = _image_document(message["document"])
        files += [doc] if doc else []
    if files:
        caption: str = message["caption"] if isinstance(message.get("caption"), str) else ""
        entities = message.get("caption_entities") or []
        group = message.get("media_group_id")
        return replace(
            base,
            kind="photo",
            caption=caption,
            hashtags=hashtags_from_entities(caption, entities) if caption else (),
            files=tuple(files),
            media_group_id=str(group) if group is not None else None,
        )
    text = message.get("text")
    command = _command(text) if isinstance(text, str) else None
    if command is not None:
        return replace(base, kind="command", command=command)
    return base


def group_messages(
    messages: Sequence[ParsedMessage], *, now: datetime, grace_seconds: float, page_full: bool
) -> tuple[list[ParsedMessage | Post], int | None]:
    """Fold photo messages into posts, in update order, up to the first unfinished album.

    Returns the commands and posts to handle now, and the ``update_id`` to resume from when an
    album may still be arriving (its later photos come as later updates, possibly on the next
    ``getUpdates`` page), or None when every update was handled.
    """
    albums: dict[tuple[int, str], list[ParsedMessage]] = {}
    for msg in messages:
        if msg.kind == "photo" and msg.media_group_id is not None and msg.chat_id is not None:
            albums.setdefault((msg.chat_id, msg.media_group_id), []).append(msg)
    last_index = {m.update_id: i for i, m in enumerate(messages)}

    def unfinished(key: tuple[int, str]) -> bool:
        parts = albums[key]
        if len(parts) >= MAX_ALBUM_MEDIA:
            return False
        end = last_index[parts[-1].update_id]
        # Another message from the same chat after the album means the client finished it.
        if any(m.chat_id == key[0] for m in messages[end + 1 :]):
            return False
        newest = max((m.date for m in parts if m.date), default=None)
        recent = newest is None or (now - newest).total_seconds() < grace_seconds
        return recent or (page_full and end == len(messages) - 1)

    out: list[ParsedMessage | Post] = []
    done: set[tuple[int, str]] = set()
    for msg in messages:
        if msg.kind == "command":
            out.append(msg)
        elif msg.kind == "photo" and msg.media_group_id is None:
            out.append(Post(f"{msg.chat_id}:{msg.message_id}", (msg,)))
        elif msg.kind == "photo" and msg.chat_id is not None and msg.media_group_id is not None:
            key = (msg.chat_id, msg.media_group_id)
            if key in done:
                continue
            if unfinished(key):
                return out, msg.update_id
            done.add(key)
            out.append(Post(f"{key[0]}:album:{key[1]}", tuple(albums[key])))
    return out, None
