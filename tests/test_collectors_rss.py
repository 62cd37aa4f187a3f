"""RSS/Atom/Media RSS collector against fake feed hosts over real HTTP (sources.md §1, §3)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from aggregator.collectors.base import SourceSpec
from aggregator.collectors.http import make_api_client
from aggregator.collectors.rss import RssCollector, parse_feed
from aggregator.errors import CollectorError, SourceConfigError
from tests.fakes.feeds import ATOM, RSS, FakeFeeds, data_file
from tests.fakes.server import AppSlot, serve_app

pytestmark = pytest.mark.anyio
MRSS = 'xmlns:media="http://search.yahoo.com/mrss/"'


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[AppSlot, str]]:
    """One loopback server per module; each test plugs in fresh feeds."""
    slot = AppSlot()
    with serve_app(slot) as base:
        yield slot, base


@pytest.fixture
def feeds(served: tuple[AppSlot, str]) -> tuple[FakeFeeds, str]:
    """Fresh fake feeds and their base URL."""
    slot, base = served
    fake = FakeFeeds()
    slot.target = fake.app
    return fake, base


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The collector's client, with the production limits."""
    async with make_api_client() as client:
        yield client


async def collect(url: str, http: httpx.AsyncClient, cursor: Any = None) -> Any:
    """One collect call for the feed at ``url``."""
    spec = SourceSpec(id=3, kind="rss", config={"url": url})
    return await RssCollector().collect(spec, http=http, cursor=cursor)


def rss(items: str, ns: str = MRSS) -> bytes:
    """An RSS 2.0 document around ``items``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" {ns}><channel>'
        f"<title>t</title><link>https://blog.example/</link>{items}</channel></rss>"
    ).encode()


MASTODON_ITEM = """<item>
  <guid isPermaLink="true">https://mastodon.example/@anna/1</guid>
  <link>https://mastodon.example/@anna/1</link>
  <pubDate>Tue, 27 Jan 2026 10:00:00 +0000</pubDate>
  <description>&lt;p&gt;My grandmother's photo #WeRemember&lt;/p&gt;</description>
  <media:content url="https://files.mastodon.example/original/a.jpg" type="image/jpeg"
      fileSize="1024" medium="image">
    <media:rating scheme="urn:simple">adult</media:rating>
    <media:description type="plain">A woman holds a sign saying We Remember</media:description>
  </media:content>
  <media:content url="https://files.mastodon.example/original/b.mp4" type="video/mp4"
      fileSize="2048" medium="video">
    <media:rating scheme="urn:simple">adult</media:rating>
    <media:description type="plain">A short clip</media:description>
    <media:thumbnail url="https://files.mastodon.example/thumb/b.jpg"/>
  </media:content>
  <category>weremember</category>
  <category>WeRemember2026</category>
</item>"""


async def test_mastodon_tag_rss_alt_text_is_not_the_body(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/tags/weremember.rss", rss(MASTODON_ITEM))
    result = await collect(f"{base}/tags/weremember.rss", http)
    (item,) = result.items
    # feedparser puts media:description into entry.content (feedparser#53); we don't.
    assert "grandmother" in item.text and "holds a sign" not in item.text
    assert [(m.url, m.alt_text) for m in item.media] == [
        (
            "https://files.mastodon.example/original/a.jpg",
            "A woman holds a sign saying We Remember",
        )
    ]
    assert item.sensitive is True  # media:rating adult = status sensitive
    assert item.hashtags == ("weremember", "weremember2026")
    assert item.external_id == "https://mastodon.example/@anna/1"
    assert (item.author_name, item.author_handle) == ("anna", "@anna@mastodon.example")


async def test_recorded_mastodon_rss_item(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/tags/example.rss", data_file("mastodon_rss_item_with_media.xml"))
    (item,) = (await collect(f"{base}/tags/example.rss", http)).items
    # No <description>: feedparser made the alt text the summary; it must not become the text.
    assert item.text == ""
    assert item.media[0].alt_text and item.media[0].alt_text.startswith("Screenshot of academic")
    assert item.media[0].declared_type == "image/png"
    assert item.sensitive is False  # nonadult
    assert item.external_id == "https://mastodon.social/@DrPen/111832201685713509"
    assert item.author_handle == "@DrPen@mastodon.social"
    assert (
        item.created_at is not None and item.created_at.isoformat() == "2024-01-28T06:39:35+00:00"
    )


async def test_flickr_public_feed_rss2_prefers_media_content(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    _, base = feeds
    url = f"{base}/services/feeds/photos_public.gne?tags=weremember&format=rss2"
    (item,) = (await collect(url, http)).items
    # media:content (_b, 1024 px), not media:thumbnail (_s, 75 px) nor the HTML <img> (_m).
    assert [m.url for m in item.media] == [
        "https://farm4.staticflickr.com/3927/15489018322_8fc8e5fb5b_b.jpg"
    ]
    assert item.author_name == "Global Institute of Sustainability"
    assert item.text.startswith("<p>Fall Welcome 2014</p>")


async def test_flickr_public_feed_atom_uses_enclosures_and_categories(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    _, base = feeds
    url = f"{base}/services/feeds/photos_public.gne?tags=chamonix,ski,snow&format=atom"
    items = (await collect(url, http)).items
    assert len(items) == 3
    first = items[0]
    assert [m.url for m in first.media] == [
        "https://farm9.staticflickr.com/8735/16894058141_d582ed1c82_b.jpg"
    ]
    assert first.external_id == "tag:flickr.com,2005:/photo/16894058141"
    assert {"chamonix", "ski", "snow"} <= set(first.hashtags)
    assert first.author_url == "https://www.flickr.com/people/kermitz/"
    # The buddy icon (the author's avatar) is never taken as a photo.
    assert all("buddyicons" not in (m.url or "") for i in items for m in i.media)


@pytest.mark.parametrize("callback", [True, False])
async def test_flickr_public_feed_json_and_jsonp(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient, callback: bool
) -> None:
    _, base = feeds
    url = f"{base}/services/feeds/photos_public.gne?format=json"
    if not callback:
        url += "&nojsoncallback=1"
    items = (await collect(url, http)).items
    assert len(items) == 20
    assert items[0].media[0].url == (
        "https://farm5.staticflickr.com/4626/25242458547_3feb31fecb_b.jpg"
    )
    assert items[0].author_name == "todo-deporte"
    assert items[0].external_id == "https://www.flickr.com/photos/142731628@N04/25242458547/"


async def test_wordpress_images_only_inside_content_encoded(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    body = data_file("wordpress_rss2_content_encoded_img.xml").replace(
        b'<p><img src="http://ww2.sinaimg.cn',
        b'<img src="https://pixel.wp.com/b.gif?host=x" alt="" width="1" height="1" />'
        b'<img src="https://s.w.org/images/core/emoji/14.0.0/72x72/1f56f.png" class="wp-smiley" />'
        b'<img src="https://secure.gravatar.com/avatar/abc?s=96" class="avatar avatar-96" />'
        b'<img src="https://blog.example/t.gif" width="0" height="0" />'
        b'<p><img src="http://ww2.sinaimg.cn',
    )
    fake.add("/tag/weremember/feed/", body)
    items = (await collect(f"{base}/tag/weremember/feed/", http)).items
    assert [[m.url for m in i.media] for i in items] == [
        ["http://ww2.sinaimg.cn/bmiddle/745a8c23gw1dxkgsvqibcj.jpg"],
        ["http://ww3.sinaimg.cn/bmiddle/745a8c23jw1e59j9jvuztj20iz0eztap.jpg"],
    ]
    # content:encoded (the full post) wins over the excerpt in <description>.
    assert "手雷" in items[0].text and items[0].language == "zh-CN"
    assert items[0].external_id == "http://www.mgpyh.com/?p=82374"
    assert items[0].author_name == "curtain"


async def test_wordpress_com_gravatar_media_content_is_not_a_photo() -> None:
    item = """<item><title>Candles</title><link>https://blog.example/candles/</link>
      <guid>https://blog.example/?p=7</guid>
      <media:content url="https://0.gravatar.com/avatar/ad516503a11cd5ca435acc9bb6523536?s=96"
          medium="image"><media:title type="html">museum</media:title></media:content>
      <media:content url="https://blog.files.example/2026/01/candles.jpg" medium="image">
          <media:title type="html">candles</media:title></media:content>
    </item>"""
    (found,) = parse_feed(rss(item), url="https://blog.example/feed/")
    assert [m.url for m in found.media] == ["https://blog.files.example/2026/01/candles.jpg"]
    assert found.text == "<p>Candles</p>"


async def test_media_group_alt_text_and_relative_urls() -> None:
    item = """<item><guid>g1</guid><link>/posts/1</link>
      <media:group>
        <media:content url="/img/large.jpg" type="image/jpeg"/>
        <media:description>Candles by the memorial</media:description>
      </media:group></item>"""
    (found,) = parse_feed(rss(item), url="https://museum.example/feed.xml")
    assert found.url == "https://museum.example/posts/1"
    assert [(m.url, m.alt_text) for m in found.media] == [
        ("https://museum.example/img/large.jpg", "Candles by the memorial")
    ]


async def test_thumbnail_is_only_a_last_resort_and_never_a_video_poster() -> None:
    video_only = """<item><guid>urn:v</guid>
      <media:content url="https://x.example/v.mp4" type="video/mp4" medium="video">
        <media:thumbnail url="https://x.example/poster.jpg"/></media:content></item>"""
    thumb_only = """<item><guid>urn:t</guid>
      <media:thumbnail url="https://x.example/only-thumb.jpg" width="500" height="375"/></item>"""
    found = parse_feed(rss(video_only + thumb_only), url="https://x.example/feed")
    assert [(i.external_id, [m.url for m in i.media]) for i in found] == [
        ("urn:t", ["https://x.example/only-thumb.jpg"])
    ]


async def test_atom_enclosure_and_image_enclosure_types() -> None:
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>f</title>
      <entry><id>urn:1</id><title>x</title><link rel="alternate" href="https://a.example/1"/>
      <link rel="enclosure" type="audio/mpeg" href="https://a.example/talk.mp3"/>
      <link rel="enclosure" type="image/webp" href="https://a.example/photo.webp"/></entry>
      <entry><id>urn:2</id><title>no image</title></entry></feed>"""
    (found,) = parse_feed(atom, url="https://a.example/atom", content_type="application/atom+xml")
    assert [(m.url, m.declared_type) for m in found.media] == [
        ("https://a.example/photo.webp", "image/webp")
    ]


async def test_duplicate_entries_and_entries_without_ids() -> None:
    items = (
        "<item><guid isPermaLink='false'>same</guid>"
        "<enclosure url='https://x.example/1.jpg' type='image/jpeg'/></item>"
        "<item><guid isPermaLink='false'>same</guid>"
        "<enclosure url='https://x.example/2.jpg' type='image/jpeg'/></item>"
        "<item><link>https://x.example/p</link>"
        "<enclosure url='https://x.example/3.jpg' type='image/jpeg' length='1'/></item>"
        "<item><title>nothing to key on</title>"
        "<enclosure url='https://x.example/4.jpg' type='image/jpeg'/></item>"
    )
    found = parse_feed(rss(items), url="https://x.example/feed")
    assert [i.external_id for i in found] == ["same", "https://x.example/p"]
    assert found[0].media[0].url == "https://x.example/1.jpg"


async def test_conditional_get_with_etag_and_last_modified(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/tags/weremember.rss", rss(MASTODON_ITEM))
    url = f"{base}/tags/weremember.rss"
    first = await collect(url, http)
    assert len(first.items) == 1
    assert set(first.cursor) == {"etag", "last_modified"}
    second = await collect(url, http, cursor=first.cursor)
    assert (second.items, second.cursor) == ([], None)  # 304: nothing new, keep the cursor
    sent = fake.requests[-1][2]
    assert sent["if-none-match"] == first.cursor["etag"]
    assert sent["if-modified-since"] == first.cursor["last_modified"]
    # Only Last-Modified known (e.g. an older cursor): still a 304.
    third = await collect(url, http, cursor={"last_modified": first.cursor["last_modified"]})
    assert third.items == []


async def test_feed_without_validators_gets_an_empty_cursor(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/plain.rss", rss(MASTODON_ITEM), conditional=False, gzip=True)
    result = await collect(f"{base}/plain.rss", http, cursor={"etag": '"old"'})
    assert len(result.items) == 1 and result.cursor == {}


async def test_http_errors(feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient) -> None:
    fake, base = feeds
    with pytest.raises(SourceConfigError, match="404"):
        await collect(f"{base}/missing.rss", http)
    fake.add("/gone.rss", b"", status=410)
    with pytest.raises(SourceConfigError, match="410"):
        await collect(f"{base}/gone.rss", http)
    fake.add("/busy.rss", b"busy", "text/plain", status=503, headers={"Retry-After": "60"})
    with pytest.raises(CollectorError) as caught:
        await collect(f"{base}/busy.rss", http)
    assert not isinstance(caught.value, SourceConfigError) and caught.value.retry_after == 60


async def test_html_page_is_not_a_feed(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/blog", b"<!doctype html><html><body><img src='/a.jpg'></body></html>", "text/html")
    with pytest.raises(SourceConfigError, match="RSS or Atom"):
        await collect(f"{base}/blog", http)


async def test_feed_over_one_mebibyte_is_refused(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/huge.rss", rss(MASTODON_ITEM * 1200))
    with pytest.raises(CollectorError, match="limit"):
        await collect(f"{base}/huge.rss", http)


async def test_feedparser_never_opens_paths_or_urls_from_the_body(
    feeds: tuple[FakeFeeds, str], http: httpx.AsyncClient
) -> None:
    fake, base = feeds
    fake.add("/path.rss", b"/etc/passwd", "text/plain")
    fake.add("/url.rss", f"{base}/tags/weremember.rss".encode(), "text/plain")
    fake.add("/tags/weremember.rss", rss(MASTODON_ITEM))
    for path in ("/path.rss", "/url.rss"):
        with pytest.raises(SourceConfigError):
            await collect(f"{base}{path}", http)
    assert [r[0] for r in fake.requests] == ["/path.rss", "/url.rss"]


async def test_entity_expansion_bomb_is_harmless() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]>'
        '<rss version="2.0"><channel><title>&l9;</title>'
        "<item><guid>b</guid><description>&l9;</description>"
        "<enclosure url='https://x.example/1.jpg' type='image/jpeg'/></item></channel></rss>"
    ).encode()
    started = time.monotonic()
    with pytest.raises(CollectorError, match="entities"):
        parse_feed(bomb, url="https://x.example/feed")
    assert time.monotonic() - started < 0.5


async def test_external_entities_are_not_read() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        b'<rss version="2.0"><channel><title>t</title><item><guid>x</guid>'
        b"<description>&x;</description>"
        b"<enclosure url='https://x.example/1.jpg' type='image/jpeg'/></item></channel></rss>"
    )
    with pytest.raises(CollectorError, match="entities"):
        parse_feed(xxe, url="https://x.example/feed", content_type=RSS)


async def test_misconfigured_url(http: httpx.AsyncClient) -> None:
    for url in ("", "file:///etc/passwd", "feed://x.example/rss"):
        with pytest.raises(SourceConfigError):
            await collect(url, http)


def test_atom_constant_is_used() -> None:
    assert ATOM.startswith("application/atom+xml")
