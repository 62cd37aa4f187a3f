"""Mastodon collector against a fake instance over real HTTP: every gotcha of sources.md §1."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from aggregator.collectors import KINDS, get_collector, mastodon
from aggregator.collectors.base import SourceSpec
from aggregator.collectors.http import make_api_client
from aggregator.collectors.mastodon import MastodonCollector, normalize_tag, parse_status
from aggregator.errors import CollectorError, InvalidInput, SourceConfigError
from tests.fakes.mastodon import FakeMastodon, answering_app, html_site_app, load
from tests.fakes.server import AppSlot, serve_app

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[AppSlot, str]]:
    """One loopback server per module; each test plugs in a fresh fake."""
    slot = AppSlot()
    with serve_app(slot) as base:
        yield slot, base


@pytest.fixture
def fake(served: tuple[AppSlot, str]) -> FakeMastodon:
    """A fresh fake instance behind the served port."""
    slot, base = served
    instance = FakeMastodon(host="127.0.0.1", base_url=base)
    slot.target = instance.app
    return instance


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The collector's client, with the production limits."""
    async with make_api_client() as client:
        yield client


def source(fake: FakeMastodon, *tags: str, **config: Any) -> SourceSpec:
    """A Mastodon source for ``tags`` on the fake."""
    return SourceSpec(
        id=1,
        kind="mastodon",
        config={"url": fake.base_url, "hashtags": list(tags), **config},
        hashtags=tuple(tags),
    )


async def collect(
    fake: FakeMastodon, http: httpx.AsyncClient, *tags: str, cursor: Any = None, **config: Any
) -> Any:
    """One collect call."""
    return await MastodonCollector().collect(
        source(fake, *tags, **config), http=http, cursor=cursor
    )


async def test_request_shape_only_media_limit_and_any_tags(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    fake.add_status(tags=["WeRemember"])
    fake.add_status(tags=["MyPomnim"])
    fake.add_status(tags=["other"])
    result = await collect(fake, http, "weremember", "мыпомним", "mypomnim")
    path, query, _ = fake.requests[-1]
    # The first tag goes in the path (URL-encoded), the others as any[].
    assert path == "/api/v1/timelines/tag/weremember"
    assert ("only_media", "true") in query and ("limit", "40") in query
    assert [v for k, v in query if k == "any[]"] == ["мыпомним", "mypomnim"]
    assert {i.hashtags for i in result.items} == {("weremember",), ("mypomnim",)}


async def test_unicode_hashtag_in_path(fake: FakeMastodon, http: httpx.AsyncClient) -> None:
    fake.add_status(tags=["БізЕскеАламыз"])
    result = await collect(fake, http, "#бізескеаламыз")
    assert fake.requests[-1][0] == "/api/v1/timelines/tag/бізескеаламыз"
    assert len(result.items) == 1


async def test_walks_forward_with_min_id_and_builds_page_urls_itself(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    first = fake.add_status(tags=["weremember"])
    result = await collect(fake, http, "weremember", "mypomnim")
    assert result.cursor == {"min_id": first["id"]} and result.more is False
    statuses = [fake.add_status(tags=["weremember" if i % 2 else "mypomnim"]) for i in range(90)]
    seen: list[str] = []
    cursor = result.cursor
    pages = 0
    while True:
        result = await collect(fake, http, "weremember", "mypomnim", cursor=cursor)
        pages += 1
        seen += [i.external_id for i in result.items]
        cursor = result.cursor or cursor
        if not result.more:
            break
    assert pages == 3
    # No gap, no duplicate, oldest first within each page, both tags kept on every page.
    assert seen == [s["uri"] for s in statuses]
    for _path, query, _ in fake.requests[1:]:
        assert ("any[]", "mypomnim") in query
    assert cursor == {"min_id": statuses[-1]["id"]}


async def walk(
    fake: FakeMastodon, http: httpx.AsyncClient, cursor: Any = None
) -> tuple[list[str], Any, int]:
    """Collect as a job run does (again while ``more``): external ids, last cursor, pages."""
    seen: list[str] = []
    pages = 0
    while True:
        result = await collect(fake, http, "weremember", cursor=cursor)
        pages += 1
        seen += [i.external_id for i in result.items]
        cursor = result.cursor or cursor
        if not result.more:
            return seen, cursor, pages


async def test_a_new_source_reaches_back_then_walks_forward_without_gaps(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    older = [fake.add_status(tags=["weremember"]) for _ in range(100)]
    seen, cursor, pages = await walk(fake, http)
    # The newest page, two older pages (max_id) back to the start of the tag, then one
    # forward request (min_id) for anything posted meanwhile.
    assert pages == 4
    assert sorted(seen) == sorted(s["uri"] for s in older) and len(set(seen)) == 100
    assert [[k for k in dict(q) if k.endswith("_id")] for _p, q, _ in fake.requests] == [
        [],
        ["max_id"],
        ["max_id"],
        ["min_id"],
    ]
    assert cursor == {"min_id": older[-1]["id"]}
    newer = [fake.add_status(tags=["weremember"]) for _ in range(5)]
    seen, cursor, _pages = await walk(fake, http, cursor)
    assert seen == [s["uri"] for s in newer]
    assert cursor == {"min_id": newer[-1]["id"]}


async def test_posts_arriving_during_the_backfill_are_collected_afterwards(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    older = [fake.add_status(tags=["weremember"]) for _ in range(60)]
    first = await collect(fake, http, "weremember")
    assert first.more and first.cursor["backfill_left"] == mastodon.BACKFILL_PAGES - 1
    during = fake.add_status(tags=["weremember"])  # posted while reaching back
    seen, cursor, _pages = await walk(fake, http, first.cursor)
    assert sorted([i.external_id for i in first.items] + seen) == sorted(
        [s["uri"] for s in older] + [during["uri"]]
    )
    assert cursor == {"min_id": during["id"]}


async def test_the_backfill_is_bounded(
    fake: FakeMastodon, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mastodon, "BACKFILL_PAGES", 2)
    statuses = [fake.add_status(tags=["weremember"]) for _ in range(200)]
    seen, cursor, pages = await walk(fake, http)
    # Two pages back (the newest 80), then forward from the newest: the oldest 120 stay.
    assert pages == 3 and set(seen) == {s["uri"] for s in statuses[-80:]}
    assert cursor == {"min_id": statuses[-1]["id"]}


async def test_link_header_drops_any_tags(fake: FakeMastodon, http: httpx.AsyncClient) -> None:
    fake.add_status(tags=["weremember"])
    fake.add_status(tags=["mypomnim"])
    response = await http.get(
        f"{fake.base_url}/api/v1/timelines/tag/weremember",
        params=[("any[]", "mypomnim"), ("only_media", "true")],
    )
    assert "any" not in response.headers["link"] and "only_media=true" in response.headers["link"]
    assert response.headers["x-ratelimit-reset"].endswith("Z")


async def test_ids_are_opaque_strings_sorted_by_length(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    fake.add_status(tags=["weremember"], status_id="99")
    fake.add_status(tags=["weremember"], status_id="100")
    result = await collect(fake, http, "weremember", cursor={"min_id": "98"})
    assert result.cursor == {"min_id": "100"}
    assert [i.remote_id for i in result.items] == ["99", "100"]


async def test_same_post_on_two_instances_has_one_external_id(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    origin = fake.add_status(tags=["weremember"])
    other = FakeMastodon(host="127.0.0.1", next_id=5_000)
    with serve_app(other.app) as other_base:
        other.base_url = other_base
        other.add_raw({**copy.deepcopy(origin), "id": "5001"}, local=False)
        here = await collect(fake, http, "weremember")
        there = await MastodonCollector().collect(
            SourceSpec(1, "mastodon", {"url": other_base}, hashtags=("weremember",)),
            http=http,
            cursor=None,
        )
    assert here.items[0].external_id == there.items[0].external_id == origin["uri"]
    assert (here.items[0].remote_id, there.items[0].remote_id) == (origin["id"], "5001")


async def test_tag_names_compare_case_insensitively(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    recorded = load("mastodon_status_update_edited_remote_hashtags.json")
    recorded["media_attachments"] = load("mastodon_status_with_two_images.json")[
        "media_attachments"
    ]
    fake.add_raw(recorded, local=False)
    result = await collect(fake, http, "musictuesday")
    assert len(result.items) == 1
    assert result.items[0].hashtags[0] == "musictuesday"
    assert normalize_tag("#ＷｅＲｅｍｅｍｂｅｒ") == normalize_tag("weremember") == "weremember"


async def test_url_null_falls_back_and_media_remote_url_is_used(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    status = fake.add_status(
        tags=["weremember"],
        url=None,
        images=[(None, "processing locally"), ("https://cdn.example/x.jpg", "cached")],
    )
    status["media_attachments"][0]["remote_url"] = "https://origin.example/original.png"
    result = await collect(fake, http, "weremember")
    item = result.items[0]
    assert item.url == status["uri"]
    assert [m.url for m in item.media] == [
        "https://origin.example/original.png",
        "https://cdn.example/x.jpg",
    ]


async def test_remote_status_keeps_cached_media_url(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    recorded = load("mastodon_public_timeline_remote_media_oldbytes.json")[0]
    recorded["tags"] = [{"name": "WeRemember", "url": "https://botsin.space/tags/weremember"}]
    fake.add_raw(recorded, local=False)
    item = (await collect(fake, http, "weremember")).items[0]
    attachment = recorded["media_attachments"][0]
    assert item.media[0].url == attachment["url"]  # the instance's cache; remote_url is fallback
    assert item.author_handle == "@osxthemes@botsin.space"
    assert item.external_id == recorded["uri"] and item.url == recorded["url"]


async def test_media_never_processed_is_skipped_and_unknown_with_image_url_kept(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    status = fake.add_status(tags=["weremember"], images=[(None, "a"), (None, "b"), (None, "c")])
    attachments = status["media_attachments"]
    attachments[1].update(type="unknown", remote_url="https://origin.example/m/photo.JPG?x=1")
    attachments[2].update(type="unknown", remote_url="https://origin.example/m/clip.mp4")
    item = (await collect(fake, http, "weremember")).items[0]
    assert [m.url for m in item.media] == ["https://origin.example/m/photo.JPG?x=1"]


async def test_empty_feed_and_unknown_tag_mean_nothing(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    fake.add_status(tags=["other"])
    result = await collect(fake, http, "weremember", cursor={"min_id": "7"})
    assert (result.items, result.cursor) == ([], None)
    fake.unknown_tag_status = 404  # the documented answer
    result = await collect(fake, http, "weremember", cursor={"min_id": "7"})
    assert (result.items, result.cursor) == ([], None)
    fake.hashtag_feed_access = "disabled"  # 4.5+: 200 []
    fake.add_status(tags=["weremember"])
    assert (await collect(fake, http, "weremember")).items == []


async def test_login_required_is_a_source_error(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    fake.hashtag_feed_access = "authenticated"
    fake.add_status(tags=["weremember"])
    with pytest.raises(SourceConfigError, match="requires a login token"):
        await collect(fake, http, "weremember")
    with pytest.raises(SourceConfigError, match="token was rejected") as caught:
        await collect(fake, http, "weremember", token="wrong-secret-token")
    assert "wrong-secret-token" not in str(caught.value)
    fake.tokens.add("good-token")
    result = await collect(fake, http, "weremember", token="good-token")
    assert len(result.items) == 1
    assert fake.requests[-1][2]["authorization"] == "Bearer good-token"


async def test_not_a_mastodon_server_is_a_source_error(http: httpx.AsyncClient) -> None:
    with serve_app(html_site_app()) as base:
        spec = SourceSpec(1, "mastodon", {"url": base}, hashtags=("weremember",))
        with pytest.raises(SourceConfigError, match="no Mastodon API"):
            await MastodonCollector().collect(spec, http=http, cursor=None)


async def test_old_server_requiring_authentication_422(http: httpx.AsyncClient) -> None:
    app = answering_app(422, {"error": "This method requires an authenticated user"})
    with serve_app(app) as base:
        spec = SourceSpec(1, "mastodon", {"url": base}, hashtags=("weremember",))
        with pytest.raises(SourceConfigError, match="authenticated user"):
            await MastodonCollector().collect(spec, http=http, cursor=None)


async def test_rate_limit_headers_with_iso_reset_are_respected(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    for _ in range(45):
        fake.add_status(tags=["weremember"])
    fake.remaining = 1  # this request leaves 0
    fake.reset_at = datetime.now(UTC) + timedelta(seconds=120)
    result = await collect(fake, http, "weremember", cursor={"min_id": "1"})
    assert len(result.items) == 40
    assert result.more is False  # a full page, but no requests left
    assert result.retry_after == pytest.approx(120, abs=3)


async def test_429_without_retry_after_uses_the_reset_header(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    fake.add_status(tags=["weremember"])
    fake.remaining = 0
    fake.reset_at = datetime.now(UTC) + timedelta(seconds=200)
    with pytest.raises(CollectorError) as caught:
        await collect(fake, http, "weremember")
    assert not isinstance(caught.value, SourceConfigError)
    assert caught.value.retry_after == pytest.approx(200, abs=3)


async def test_429_without_any_header_waits_the_window(http: httpx.AsyncClient) -> None:
    with serve_app(answering_app(429, {"error": "Too many requests"})) as base:
        spec = SourceSpec(1, "mastodon", {"url": base}, hashtags=("weremember",))
        with pytest.raises(CollectorError) as caught:
            await MastodonCollector().collect(spec, http=http, cursor=None)
    assert caught.value.retry_after == 300


async def test_images_only_videos_and_gifv_skipped(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    video = load("mastodon_status_sensitive_video.json")
    video.update(visibility="public", tags=[{"name": "weremember", "url": "x"}])
    fake.add_raw(video)
    mixed = fake.add_status(
        tags=["weremember"],
        images=[
            ("https://x.example/a.mp4", "v"),
            ("https://x.example/b.jpg", "photo"),
            ("https://x.example/c.mp4", "g"),
            ("https://x.example/d.mp3", "a"),
        ],
        media_types=["video", "image", "gifv", "audio"],
    )
    result = await collect(fake, http, "weremember")
    assert [i.external_id for i in result.items] == [mixed["uri"]]
    assert [m.url for m in result.items[0].media] == ["https://x.example/b.jpg"]


async def test_alt_text_sensitive_and_content_warning(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    recorded = load("mastodon_status_with_two_images.json")
    recorded.update(visibility="public", tags=[{"name": "WeRemember", "url": "x"}])
    fake.add_raw(recorded)
    warned = fake.add_status(tags=["weremember"], spoiler_text="Names of victims")
    result = await collect(fake, http, "weremember")
    first, second = result.items
    assert [m.alt_text for m in first.media] == [
        "John Lennon doing a funny walk",
        "hololives #1 detective, watson ameliachan",
    ]
    assert [m.external_id for m in first.media] == [a["id"] for a in recorded["media_attachments"]]
    assert first.sensitive is True and first.content_warning is None
    assert first.author_name == "John Lennon"
    assert first.author_handle == "@mastodonpy_test@127.0.0.1"
    assert first.text_is_html and first.text == "<p>LOL check this out</p>"
    assert first.language == "en"
    assert first.created_at == datetime(2026, 8, 1, 13, 51, 35, 294000, tzinfo=UTC)
    assert second.external_id == warned["uri"]
    assert second.sensitive is True and second.content_warning == "Names of victims"


async def test_reblog_uses_the_reblogged_status() -> None:
    inner = load("mastodon_status_with_two_images.json")
    inner.update(visibility="public", tags=[{"name": "weremember", "url": "x"}])
    wrapper = load("mastodon_tag_timeline_hoot.json")[0]
    wrapper.update(reblog=inner, media_attachments=[], tags=[])
    item = parse_status(wrapper, host="h.example", wanted=frozenset({"weremember"}))
    assert item is not None
    assert item.external_id == inner["uri"] and item.remote_id == inner["id"]
    assert len(item.media) == 2


async def test_only_public_statuses(fake: FakeMastodon, http: httpx.AsyncClient) -> None:
    for visibility in ("unlisted", "private", "direct"):
        status = load("mastodon_status_with_two_images.json")
        status.update(id=fake.new_id(), tags=[{"name": "weremember", "url": "x"}])
        assert parse_status({**status, "visibility": visibility}, host="h") is None
    assert parse_status({**status, "visibility": "public"}, host="h") is not None


async def test_recorded_text_only_timeline_gives_nothing(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    fake.add_raw(load("mastodon_tag_timeline_hoot.json")[0])
    result = await collect(fake, http, "hoot")
    # only_media filters it on the server; the collector would skip it anyway.
    assert result.items == []
    assert parse_status(load("mastodon_tag_timeline_hoot.json")[0], host="h") is None


async def test_missing_reports_deleted_statuses(
    fake: FakeMastodon, http: httpx.AsyncClient
) -> None:
    kept = fake.add_status(tags=["weremember"])
    deleted = fake.add_status(tags=["weremember"])
    by_url = fake.add_status(tags=["weremember"])
    fake.deleted.update({deleted["id"], by_url["id"]})
    gone = await MastodonCollector().missing(
        source(fake, "weremember"),
        http=http,
        external_ids=[
            (kept["uri"], kept["id"]),
            (deleted["uri"], deleted["id"]),
            (by_url["uri"], by_url["url"]),
            ("https://elsewhere.example/x", "https://elsewhere.example/@a/1"),
        ],
    )
    assert gone == {deleted["uri"], by_url["uri"]}
    assert [r[0] for r in fake.requests] == [
        f"/api/v1/statuses/{kept['id']}",
        f"/api/v1/statuses/{deleted['id']}",
        f"/api/v1/statuses/{by_url['id']}",
    ]


async def test_missing_never_guesses_on_errors(fake: FakeMastodon, http: httpx.AsyncClient) -> None:
    status = fake.add_status(tags=["weremember"])
    fake.remaining = 0
    with pytest.raises(CollectorError) as caught:
        await MastodonCollector().missing(
            source(fake, "weremember"), http=http, external_ids=[(status["uri"], status["id"])]
        )
    assert caught.value.retry_after is not None
    with serve_app(html_site_app()) as base:
        spec = SourceSpec(1, "mastodon", {"url": base}, hashtags=("weremember",))
        with pytest.raises(SourceConfigError):
            await MastodonCollector().missing(spec, http=http, external_ids=[("u", "123")])


@pytest.mark.parametrize(
    ("config", "tags", "message"),
    [
        ({"url": "ftp://example.org"}, ("a",), "http"),
        ({"url": ""}, ("a",), "http"),
        ({"url": "https://example.org"}, (), "at least one hashtag"),
        ({"url": "https://example.org"}, ("a", "b", "c", "d", "e"), "at most 4"),
    ],
)
async def test_misconfiguration(
    config: dict[str, Any], tags: tuple[str, ...], message: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(SourceConfigError, match=message):
        await MastodonCollector().collect(
            SourceSpec(1, "mastodon", config, hashtags=tags), http=http, cursor=None
        )


async def test_registry() -> None:
    assert KINDS == ("mastodon", "bluesky", "rss", "telegram")
    assert isinstance(get_collector("mastodon"), MastodonCollector)
    assert get_collector("rss").kind == "rss"
    with pytest.raises(InvalidInput):
        get_collector("instagram")
