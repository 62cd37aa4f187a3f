"""Collector registry: one module per platform, imported only when that kind is used."""

from __future__ import annotations

import importlib

from aggregator.collectors.base import Collector
from aggregator.errors import InvalidInput

KINDS = ("mastodon", "bluesky", "rss", "telegram")

# kind -> (module, class). Imported lazily so one platform's import problem cannot stop the
# others, and the CLI does not pay for every client library at start-up.
_REGISTRY: dict[str, tuple[str, str]] = {
    "mastodon": ("aggregator.collectors.mastodon", "MastodonCollector"),
    "bluesky": ("aggregator.collectors.bluesky", "BlueskyCollector"),
    "rss": ("aggregator.collectors.rss", "RssCollector"),
    "telegram": ("aggregator.collectors.telegram", "TelegramCollector"),
}
COLLECTORS: dict[str, type] = {}


def collector_class(kind: str) -> type:
    """The collector class for ``kind``; ``InvalidInput`` for an unknown kind."""
    if kind not in _REGISTRY:
        raise InvalidInput(
            f"unknown source kind {kind!r} (one of {', '.join(KINDS)})", field="kind"
        )
    if kind not in COLLECTORS:
        module_name, class_name = _REGISTRY[kind]
        COLLECTORS[kind] = getattr(importlib.import_module(module_name), class_name)
    return COLLECTORS[kind]


def get_collector(kind: str) -> Collector:
    """A fresh collector instance for ``kind``."""
    instance: Collector = collector_class(kind)()
    return instance


__all__ = ["COLLECTORS", "KINDS", "Collector", "collector_class", "get_collector"]
