"""Rendered public bodies (gallery, photo and embed pages, read-API pages, the Atom feed),
reused until anything is committed to the database.

A body is kept under the database's commit stamp, read *before* the queries it was rendered
from (``aggregator.commit_stamp``), and under everything else it depends on (the route, its
parameters, the language, the site address). Any commit, by this process or another, moves
the stamp, so a kept body is never served once the data under it changed: a takedown leaves
every public page with the next request. Between commits, visitors get the kept bytes without
a query; these are the pages a shared link sends everyone to at once. Entries are bounded
(least recently used go first); those of an old stamp are never asked for again and age out.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from aggregator.commit_stamp import CommitStamp

DEFAULT_SIZE: Final = 256


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered body and its strong validator (for ETag)."""

    content: bytes
    etag: str


def make_body(content: bytes) -> Body:
    """``content`` with its ETag: a digest, so equal bodies revalidate across stamps."""
    return Body(content, f'"{hashlib.sha256(content).hexdigest()[:32]}"')


class BodyCache:
    """A bounded, thread-safe map from (commit stamp, key) to a rendered body."""

    def __init__(self, stamp: CommitStamp, size: int = DEFAULT_SIZE) -> None:
        self.stamp = stamp
        self.size = size
        self._entries: OrderedDict[Hashable, Body] = OrderedDict()
        self._lock = threading.Lock()

    def kept(self, key: Hashable) -> Body | None:
        """The body kept for ``key`` if nothing was committed since it was made."""
        stamp = self.stamp.read()
        return None if stamp is None else self._lookup((stamp, key))

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> Body:
        """The body for ``key`` as of now: kept if nothing was committed since it was made,
        else ``make()`` (which queries the database; call this from a worker thread)."""
        stamp = self.stamp.read()
        if stamp is None:
            return make_body(make())
        full_key = (stamp, key)
        body = self._lookup(full_key)
        if body is None:
            body = make_body(make())  # outside the lock: other keys need not wait
            with self._lock:
                self._entries[full_key] = body
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return body

    def _lookup(self, full_key: Hashable) -> Body | None:
        with self._lock:
            body = self._entries.get(full_key)
            if body is not None:
                self._entries.move_to_end(full_key)  # recently used: evicted last
            return body


async def public_body(request: Request, key: Hashable, make: Callable[[], bytes]) -> Body:
    """``BodyCache.get_or_make`` of the app's cache, in a worker thread (it may query).

    A signed-in visitor's page carries their menu and token, so it is made for them alone.
    """
    if getattr(request.state, "user", None) is not None:
        return make_body(await run_in_threadpool(make))
    cache: BodyCache = request.app.state.public_bodies
    if cache.stamp.instant:  # a kept body is then served without leaving the event loop
        body = cache.kept(key)
        if body is not None:
            return body
    return await run_in_threadpool(cache.get_or_make, key, make)
