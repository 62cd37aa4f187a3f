"""Bluesky collector against a fake PDS/AppView (tests/fakes/bluesky.py).

Covers the Bluesky gotchas of reference/sources.md §2: a cached app-password session and its
refresh on ExpiredToken, login limits, searchPosts paging newest-first with reruns that return
nothing new, every image view shape, UTF-8 byte-offset facets, ``record.tags``, opted-out
authors, labels, RateLimit headers and deletions seen through getPosts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator.collectors.base import CollectedItem, CollectResult, SourceSpec
from aggregator.collectors.bluesky import BlueskyCollector
from aggregator.collectors.bluesky_parse import hashtags, item_from_post, sort_at, utf8_slice
from aggregator.collectors.http import make_api_client
from aggregator.errors import CollectorError, SourceConfigError
from tests.fakes.bluesky import FakeBluesky, recorded_post_view, tag_facets
from tests.fakes.server import serve_app

SERVICE = "http://pds.test"
DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 1, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> FakeBluesky:
    return FakeBluesky()


@pytest.fixture
async def http(fake: FakeBluesky) -> AsyncIterator[httpx.AsyncClient]:
    async with make_api_client(transport=httpx.ASGITransport(app=fake.app)) as client:
        yield client


def source_for(fake: FakeBluesky, *tags: str, **config: Any) -> SourceSpec:
    cfg = {
        "url": SERVICE,
        "handle": fake.handle,
        "app_password": fake.password,
        "public_url": SERVICE,
        **config,
    }
    return SourceSpec(id=3, kind="bluesky", config=cfg, hashtags=tags or ("weremember",))


def add_many(fake: FakeBluesky, count: int, *, start: datetime = T0, prefix: str = "p") -> None:
    for n in range(count):
        fake.add_post(f"{prefix}{n:04d}", "#WeRemember", indexed_at=start + timedelta(minutes=n))


async def run(
    collector: BlueskyCollector,
    fake: FakeBluesky,
    http: httpx.AsyncClient,
    cursor: Any = None,
    *tags: str,
    **config: Any,
) -> CollectResult:
    return await collector.collect(source_for(fake, *tags, **config), http=http, cursor=cursor)


def search_calls(fake: FakeBluesky) -> list[dict[str, Any]]:
    return [params for nsid, params in fake.calls if nsid == "app.bsky.feed.searchPosts"]


# -- parsing ----------------------------------------------------------------------------------


def test_recorded_post_view_becomes_an_item() -> None:
    post = recorded_post_view()
    item = item_from_post(post)
    assert item is not None
    assert item.external_id == item.remote_id == post["uri"]
    assert item.url == "https://bsky.app/profile/blowdart.me/post/3lnmbltm4j223"
    assert item.author_name == "Barry Dorrans" and item.author_handle == "blowdart.me"
    [media] = item.media
    assert media.url == post["embed"]["images"][0]["fullsize"]
    assert media.alt_text == "A cat loafing on the back for a sofa sticking his tongue out"
    assert media.external_id == "bafkreifulgueyb5ndxgj5zgqeme2tmqttgkooceev74el6g5am5tsz6dqu"
    assert media.declared_type == "image/jpeg"
    assert item.created_at == datetime(2025, 4, 25, 3, 25, 41, 979000, tzinfo=UTC)
    assert item.language == "en"


def test_recorded_jetstream_facets_are_utf8_byte_ranges() -> None:
    lines = (DATA / "bluesky_jetstream_post_events.jsonl").read_text().splitlines()
    record = json.loads(lines[0])["commit"]["record"]
    for facet in record["facets"]:
        feature = facet["features"][0]
        if feature["$type"].endswith("#tag"):
            index = facet["index"]
            sliced = utf8_slice(record["text"], index["byteStart"], index["byteEnd"])
            assert sliced == "#" + feature["tag"]
    assert hashtags(record)[:3] == ("live", "WARFRAME", "twitchtv")


def test_facet_offsets_with_cyrillic_and_emoji() -> None:
    text = "🕯️ Мы помним 👨‍👩‍👧 #МыПомним 🇰🇿 #БізЕскеАламыз #WeRemember"
    facets = tag_facets(text)
    start, end = facets[0]["index"]["byteStart"], facets[0]["index"]["byteEnd"]
    assert text[start:end] != "#МыПомним"  # character offsets would cut the wrong span
    assert utf8_slice(text, start, end) == "#МыПомним"
    # A facet without ``tag`` still yields the hashtag from its byte range.
    del facets[1]["features"][0]["tag"]
    record = {"text": text, "facets": facets, "tags": ["weremember", "ALZHIR"]}
    assert hashtags(record) == ("МыПомним", "БізЕскеАламыз", "WeRemember", "ALZHIR")


def test_sort_at_never_trusts_a_future_created_at() -> None:
    post = recorded_post_view()
    post["record"]["createdAt"] = "2099-01-01T00:00:00.000Z"
    assert sort_at(post) == datetime(2025, 4, 25, 3, 25, 44, 578000, tzinfo=UTC)


def test_gallery_item_without_fullsize_uses_thumbnail(fake: FakeBluesky) -> None:
    post = fake.add_post("g1", "#WeRemember", indexed_at=T0, embed="gallery")
    del post["embed"]["items"][0]["fullsize"]
    item = item_from_post(post)
    assert item is not None
    assert item.media[0].url == post["embed"]["items"][0]["thumbnail"]


# -- collecting -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("embed", ["images", "gallery", "recordWithMedia"])
async def test_every_image_view_gives_fullsize_images_with_alt(
    fake: FakeBluesky, http: httpx.AsyncClient, embed: str
) -> None:
    fake.add_post("a1", "Мы помним #WeRemember", indexed_at=T0, images=2, embed=embed)
    [item] = (await run(BlueskyCollector(), fake, http)).items
    assert [m.url.split("/")[4] for m in item.media if m.url] == ["feed_fullsize"] * 2
    assert [m.alt_text for m in item.media] == ["A person holding a sign", None]
    assert item.hashtags == ("WeRemember",)


@pytest.mark.anyio
async def test_posts_without_images_are_skipped(fake: FakeBluesky, http: httpx.AsyncClient) -> None:
    fake.add_post("v1", "#WeRemember video", indexed_at=T0, embed="video")
    fake.add_post("t1", "#WeRemember text only", indexed_at=T0, embed="none")
    result = await run(BlueskyCollector(), fake, http)
    assert result.items == []
    assert result.cursor is not None and result.cursor["tags"]["weremember"]["since"]


@pytest.mark.anyio
async def test_opted_out_authors_and_hidden_posts_are_skipped_and_labels_flag(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    fake.add_post("o1", "#WeRemember", indexed_at=T0, author_labels=["!no-unauthenticated"])
    fake.add_post("h1", "#WeRemember", indexed_at=T0, labels=["!hide"])
    fake.add_post("s1", "#WeRemember", indexed_at=T0, labels=["graphic-media"])
    fake.add_post("s2", "#WeRemember", indexed_at=T0, self_labels=["nudity"])
    items = (await run(BlueskyCollector(), fake, http)).items
    assert sorted(i.external_id.rsplit("/", 1)[1] for i in items) == ["s1", "s2"]
    assert all(i.sensitive for i in items)
    assert {i.content_warning for i in items} == {"graphic-media", "nudity"}


@pytest.mark.anyio
async def test_search_asks_for_latest_by_tag(fake: FakeBluesky, http: httpx.AsyncClient) -> None:
    await run(BlueskyCollector(), fake, http, None, "weremember", "мыпомним")
    first, second = search_calls(fake)
    assert first["tag"] == ["weremember"] and first["sort"] == ["latest"]
    assert first["q"] == ["#weremember"] and first["limit"] == ["100"]
    assert second["tag"] == ["мыпомним"]


@pytest.mark.anyio
async def test_a_post_with_two_campaign_tags_is_returned_once(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    fake.add_post("b1", "#WeRemember #МыПомним", indexed_at=T0)
    result = await run(BlueskyCollector(), fake, http, None, "weremember", "мыпомним")
    assert len(result.items) == 1
    again = await run(BlueskyCollector(), fake, http, result.cursor, "weremember", "мыпомним")
    assert again.items == []


@pytest.mark.anyio
async def test_paging_then_rerun_returns_nothing_new(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 250)
    collector = BlueskyCollector()
    first = await run(collector, fake, http)
    assert len(first.items) == 250 and first.more is False
    assert len(search_calls(fake)) == 3  # 100 + 100 + 50, following ``cursor``
    again = await run(collector, fake, http, first.cursor)
    assert again.items == []
    add_many(fake, 2, start=T0 + timedelta(days=1), prefix="new")
    later = await run(collector, fake, http, again.cursor)
    assert sorted(i.external_id[-7:] for i in later.items) == ["new0000", "new0001"]
    # Reruns start from the watermark less the overlap, so they stay one page deep.
    assert search_calls(fake)[-1]["since"] and "cursor" not in search_calls(fake)[-1]


@pytest.mark.anyio
async def test_late_indexed_post_within_the_overlap_is_not_lost(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 3)
    first = await run(BlueskyCollector(), fake, http)
    # Indexed late: it sorts five minutes below the newest post already returned.
    fake.add_post("late", "#WeRemember", indexed_at=T0 + timedelta(minutes=-3))
    again = await run(BlueskyCollector(), fake, http, first.cursor)
    assert [i.external_id[-4:] for i in again.items] == ["late"]


@pytest.mark.anyio
async def test_walk_over_several_runs_loses_and_repeats_nothing(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 250)
    collector, cursor, seen = BlueskyCollector(), None, []
    result = await run(collector, fake, http, cursor, max_pages=1)
    seen += [i.external_id for i in result.items]
    assert result.more is True
    # New posts arrive mid-walk; the offset-like search cursor shifts by five.
    add_many(fake, 5, start=T0 + timedelta(days=1), prefix="mid")
    while result.more:
        result = await run(collector, fake, http, result.cursor, max_pages=1)
        seen += [i.external_id for i in result.items]
    result = await run(collector, fake, http, result.cursor, max_pages=1)
    seen += [i.external_id for i in result.items]
    assert len(seen) == len(set(seen)) == 255


@pytest.mark.anyio
async def test_refused_deep_cursor_ends_the_walk_instead_of_breaking_the_source(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 250)
    fake.max_depth = 100
    collector = BlueskyCollector()
    first = await run(collector, fake, http)
    assert len(first.items) == 100 and first.more is False
    assert (await run(collector, fake, http, first.cursor)).items == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tags", "config"),
    [(("x" * 65,), {}), (("weremember",), {"max_pages": "many"})],
)
async def test_refused_hashtag_or_bad_setting_is_a_config_error(
    fake: FakeBluesky, http: httpx.AsyncClient, tags: tuple[str, ...], config: dict[str, str]
) -> None:
    with pytest.raises(SourceConfigError):
        await run(BlueskyCollector(), fake, http, None, *tags, **config)


@pytest.mark.anyio
async def test_uncommitted_run_is_repeated_in_full(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 120)
    collector = BlueskyCollector()
    first = await run(collector, fake, http)
    # The ingest crashed and the cursor was not saved: the same call returns the same posts.
    again = await run(collector, fake, http, None)
    assert [i.external_id for i in again.items] == [i.external_id for i in first.items]


# -- the session ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_session_is_created_once_and_survives_a_restart(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    first = await run(BlueskyCollector(), fake, http)
    assert first.cursor is not None
    session = first.cursor["session"]
    assert session["did"] == fake.did and session["accessJwt"] in fake.access
    restarted = BlueskyCollector()  # a new process: only the saved cursor remains
    await run(restarted, fake, http, first.cursor)
    await run(restarted, fake, http, None)  # the in-process cache also serves
    assert fake.logins == 1


@pytest.mark.anyio
async def test_expired_token_is_refreshed(fake: FakeBluesky, http: httpx.AsyncClient) -> None:
    fake.add_post("e1", "#WeRemember", indexed_at=T0)
    first = await run(BlueskyCollector(), fake, http)
    assert first.cursor is not None
    fake.expire_access_tokens()
    result = await run(BlueskyCollector(), fake, http, {"session": first.cursor["session"]})
    assert len(result.items) == 1
    assert (fake.logins, fake.refreshes) == (1, 1)
    assert result.cursor is not None
    assert result.cursor["session"]["accessJwt"] != first.cursor["session"]["accessJwt"]


@pytest.mark.anyio
async def test_expired_refresh_token_logs_in_again(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    first = await run(BlueskyCollector(), fake, http)
    fake.expire_access_tokens()
    fake.refresh.clear()
    await run(BlueskyCollector(), fake, http, first.cursor)
    assert (fake.logins, fake.refreshes) == (2, 0)


@pytest.mark.anyio
async def test_session_of_another_account_is_not_used(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    first = await run(BlueskyCollector(), fake, http)
    assert first.cursor is not None
    cursor = {**first.cursor, "session": {**first.cursor["session"], "identifier": "old.handle"}}
    await run(BlueskyCollector(), fake, http, cursor)
    assert fake.logins == 2


@pytest.mark.anyio
async def test_wrong_password_is_a_config_error_not_retried_at_once(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    collector = BlueskyCollector()
    for _ in range(3):
        with pytest.raises(SourceConfigError, match="app password") as caught:
            await run(collector, fake, http, app_password="wrong-pass-word")
        assert "wrong-pass-word" not in str(caught.value)
    assert fake.logins == 1  # createSession allows only 30 logins per 5 minutes
    await run(collector, fake, http)  # a corrected password is tried at once
    assert fake.logins == 2


@pytest.mark.anyio
async def test_login_rate_limit_is_transient_with_retry_after(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    fake.login_budget = 0
    with pytest.raises(CollectorError) as caught:
        await run(BlueskyCollector(), fake, http)
    assert not isinstance(caught.value, SourceConfigError)
    assert caught.value.retry_after == 300


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("config", "tags"),
    [({"app_password": ""}, ("weremember",)), ({}, ("",))],
)
async def test_incomplete_configuration(
    fake: FakeBluesky, http: httpx.AsyncClient, config: dict[str, str], tags: tuple[str, ...]
) -> None:
    with pytest.raises(SourceConfigError):
        await run(BlueskyCollector(), fake, http, None, *tags, **config)


@pytest.mark.anyio
async def test_logged_out_search_403_html_is_a_config_error(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    fake.forbid_search = True
    with pytest.raises(SourceConfigError, match="app password"):
        await run(BlueskyCollector(), fake, http, None, handle="", app_password="")


# -- rate limits ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_ratelimit_remaining_zero_stops_the_run_with_retry_after(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 150)
    fake.remaining = 2  # createSession + one search page
    result = await run(BlueskyCollector(), fake, http)
    assert len(result.items) == 100
    assert result.more is False
    assert result.retry_after is not None and 250 < result.retry_after <= 300
    with pytest.raises(CollectorError) as caught:
        await run(BlueskyCollector(), fake, http, result.cursor)
    assert caught.value.retry_after == 300  # Retry-After of the 429
    fake.remaining = 100
    rest = await run(BlueskyCollector(), fake, http, result.cursor)
    assert len(rest.items) == 50


@pytest.mark.anyio
async def test_edge_429_after_some_pages_keeps_their_items(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 250)
    fake.edge_429_after = 2  # login and one page, then an HTML 429 without headers
    collector = BlueskyCollector()
    first = await run(collector, fake, http)
    assert len(first.items) == 100
    assert first.retry_after == 60 and first.more is False
    fake.edge_429_after = None
    rest = await run(collector, fake, http, first.cursor)
    assert len(rest.items) == 150
    assert len({i.external_id for i in [*first.items, *rest.items]}) == 250


# -- deletions --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_missing_reports_posts_getposts_omits(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 30)
    uris = [p["uri"] for p in fake.posts]
    fake.deleted |= {uris[1], uris[27]}
    gone = await BlueskyCollector().missing(
        source_for(fake),
        http=http,
        external_ids=[(u, u) for u in [*uris, "https://not-a-bluesky-id"]],
    )
    assert gone == {uris[1], uris[27]}
    batches = [p["uris"] for nsid, p in fake.calls if nsid == "app.bsky.feed.getPosts"]
    assert [len(b) for b in batches] == [25, 5]


@pytest.mark.anyio
async def test_missing_raises_instead_of_guessing_when_rate_limited(
    fake: FakeBluesky, http: httpx.AsyncClient
) -> None:
    add_many(fake, 3)
    fake.remaining = 0
    with pytest.raises(CollectorError):
        await BlueskyCollector().missing(
            source_for(fake), http=http, external_ids=[(p["uri"], p["uri"]) for p in fake.posts]
        )


# -- real HTTP --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_collect_over_real_http(fake: FakeBluesky) -> None:
    fake.add_post("r1", "🕯️ Біз еске аламыз #БізЕскеАламыз", indexed_at=T0, embed="gallery")
    with serve_app(fake.app) as base_url:
        async with make_api_client() as client:
            source = source_for(fake, "бізескеаламыз", url=base_url, public_url=base_url)
            result = await BlueskyCollector().collect(source, http=client, cursor=None)
            gone = await BlueskyCollector().missing(
                source,
                http=client,
                external_ids=[(i.external_id, i.external_id) for i in result.items],
            )
    [item] = result.items
    assert isinstance(item, CollectedItem)
    assert item.hashtags == ("БізЕскеАламыз",)
    assert item.url == "https://bsky.app/profile/participant.bsky.social/post/r1"
    assert gone == set()
