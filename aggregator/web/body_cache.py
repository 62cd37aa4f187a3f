"""A memo of rendered public bodies (gallery pages, API pages, feeds).

Each entry is keyed by *everything* its body was rendered from: the rows just read from the
database (frozen, hashable ``PublicItem`` tuples), the language, the filters and the cursor.
A changed caption, a new approval or a takedown changes the rows, hence the key, so an entry
can never be served stale; it only saves re-rendering an identical page for the next visitor.
The queries still run on every request. Entries are bounded (least recently used go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

from starlette.requests import Request

DEFAULT_SIZE: Final = 256


class BodyCache:
    """A bounded, thread-safe memo from a hashable key to response bytes."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The body for ``key``, made (outside the lock) and remembered on a miss."""
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
                return body
        body = make()
        with self._lock:
            self._entries[key] = body
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return body

    def __len__(self) -> int:
        return len(self._entries)


def body_cache(request: Request) -> BodyCache:
    """The app's memo, created on first use (no import-time state)."""
    cache: BodyCache | None = getattr(request.app.state, "public_body_cache", None)
    if cache is None:
        cache = BodyCache()
        request.app.state.public_body_cache = cache
    return cache


def cacheable(request: Request) -> bool:
    """Only anonymous pages are shared: a signed-in page carries its user's menu and token."""
    return getattr(request.state, "user", None) is None
