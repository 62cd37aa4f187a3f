"""Safe fetching of remote media: SSRF list (security.md (b) #21), redirects, caps, timeouts.

Every test runs under ``guard_network``: socket connects and DNS lookups are recorded and
anything but loopback is refused, so the assertions prove no packet left the machine.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator, Sequence
from typing import Any

import httpcore
import httpx
import pytest
import trustme

from aggregator.collectors.fetch import (
    FetchedFile,
    FetchError,
    FetchRefused,
    FetchTimeout,
    FetchTooLarge,
    GuardedBackend,
    address_allowed,
    check_url,
    fetch_remote,
    make_safe_client,
    parse_networks,
)
from aggregator.errors import CollectorError
from tests.fakes.feeds import JPEG, media_host_app
from tests.fakes.server import NetworkLog, guard_network, serve_app

pytestmark = pytest.mark.anyio
LOOPBACK = parse_networks(["127.0.0.0/8"])


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    """The fake remote web server on loopback."""
    with serve_app(media_host_app(bomb_size=64 << 20)) as base:
        yield base


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> NetworkLog:
    """Record (and refuse, unless loopback) every connect and lookup during the test."""
    return guard_network(monkeypatch)


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


class StubResolver:
    """DNS answers from a table; counts lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        return list(self.table[host])


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """A socket layer that records whom it would dial and refuses: nothing is sent."""

    def __init__(self) -> None:
        self.dialled: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.dialled.append(host)
        raise httpcore.ConnectError("recording backend: not connecting")

    async def sleep(self, seconds: float) -> None:
        return None


SSRF_URLS = [
    # loopback and its spellings
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f.0.0.1/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://localhost/",
    "http://foo.localhost/",
    "http://LOCALHOST./",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::1]/",
    # private, CGNAT, link-local, metadata, multicast, broadcast
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    # IPv6 wrappers around IPv4
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[::127.0.0.1]/",
    # other schemes and credentials
    "file:///etc/passwd",
    "gopher://example.org/_GET",
    "ftp://example.org/x.jpg",
    "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)",
    "http://user:pw@example.org/x.jpg",
    "//example.org/x.jpg",
    "",
]


@pytest.mark.parametrize("url", SSRF_URLS)
async def test_ssrf_list_refused_before_any_connection(url: str, net: NetworkLog) -> None:
    with pytest.raises(FetchRefused) as caught:
        await fetch_remote(url)
    assert caught.value.code == "fetch_refused"
    assert isinstance(caught.value, CollectorError)
    assert net.connects == [] and net.lookups == []


async def test_hostname_resolving_to_loopback_is_refused(net: NetworkLog) -> None:
    resolver = StubResolver({"evil.example": ["127.0.0.1"]})
    async with make_safe_client(resolver=resolver) as client:
        with pytest.raises(FetchRefused, match="no public address"):
            await fetch_remote("http://evil.example/x.jpg", http=client)
    assert resolver.calls == ["evil.example"]
    assert net.connects == []


async def test_system_resolver_answer_is_checked_too(
    net: NetworkLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        net.lookups.append(host.decode() if isinstance(host, bytes) else str(host))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(FetchRefused):
        await fetch_remote("http://metadata.example/latest/")
    assert net.lookups == ["metadata.example"]
    assert net.connects == []


async def test_mixed_answer_dials_only_the_public_address(net: NetworkLog) -> None:
    resolver = StubResolver({"mixed.example": ["10.0.0.7", "127.0.0.1", "93.184.215.14"]})
    inner = RecordingBackend()
    async with make_safe_client(resolver=resolver, inner=inner) as client:
        with pytest.raises(FetchError) as caught:
            await fetch_remote("http://mixed.example/x.jpg", http=client)
    assert not isinstance(caught.value, FetchRefused)
    assert inner.dialled == ["93.184.215.14"]
    assert net.connects == []


async def test_rebinding_cannot_swap_the_address_after_the_check(net: NetworkLog) -> None:
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    inner = RecordingBackend()
    async with make_safe_client(resolver=rebinding, inner=inner) as client:
        with pytest.raises(FetchError):
            await fetch_remote("http://rebind.example/x.jpg", http=client)
        with pytest.raises(FetchRefused):
            await fetch_remote("http://rebind.example/x.jpg", http=client)
    # One lookup per connect, and the address dialled is the one that was checked.
    assert inner.dialled == ["93.184.215.14"]
    assert net.connects == []


async def test_check_happens_in_the_connection_path_not_only_on_the_url(net: NetworkLog) -> None:
    async with make_safe_client() as client:
        with pytest.raises(FetchRefused):
            await client.get("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchRefused):
        await GuardedBackend().connect_tcp("10.1.2.3", 80)
    with pytest.raises(FetchRefused):
        await GuardedBackend().connect_unix_socket("/var/run/docker.sock")
    assert net.connects == []


async def test_allowed_loopback_fetch_works(host: str, net: NetworkLog) -> None:
    fetched = await fetch_remote(f"{host}/image.jpg", allow_networks=LOOPBACK)
    assert fetched == FetchedFile(JPEG, "image/jpeg", f"{host}/image.jpg")
    assert net.non_loopback() == []


async def test_host_header_keeps_the_name_while_the_vetted_ip_is_dialled(
    host: str, net: NetworkLog
) -> None:
    resolver = StubResolver({"photos.example": ["127.0.0.1"]})
    url = f"http://photos.example:{_port(host)}/echo-host"
    async with make_safe_client(LOOPBACK, resolver=resolver) as client:
        fetched = await fetch_remote(url, http=client)
    assert fetched.data == f"photos.example:{_port(host)}".encode()
    assert net.lookups == [] and net.non_loopback() == []


async def test_tls_sni_and_certificate_use_the_name(
    net: NetworkLog, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("photos.example")
    key_file, chain_file = tmp_path / "key.pem", tmp_path / "chain.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(chain_file))
    context = httpx.create_ssl_context()
    ca.configure_trust(context)
    app = media_host_app(bomb_size=1 << 20)
    with serve_app(app, ssl_keyfile=str(key_file), ssl_certfile=str(chain_file)) as base:
        resolver = StubResolver({"photos.example": ["127.0.0.1"]})
        url = f"https://photos.example:{_port(base)}/image.jpg"
        async with make_safe_client(LOOPBACK, resolver=resolver, ssl_context=context) as client:
            fetched = await fetch_remote(url, http=client)
            assert fetched.data == JPEG
            # The certificate names photos.example, not 127.0.0.1: verification must fail there.
            with pytest.raises(FetchError):
                await fetch_remote(f"https://127.0.0.1:{_port(base)}/image.jpg", http=client)
    assert net.non_loopback() == []


async def test_environment_proxies_are_ignored(
    host: str, net: NetworkLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    fetched = await fetch_remote(f"{host}/image.jpg", allow_networks=LOOPBACK)
    assert fetched.data == JPEG
    assert net.non_loopback() == []


async def test_redirect_to_metadata_ip_is_refused(host: str, net: NetworkLog) -> None:
    with pytest.raises(FetchRefused, match="redirect refused"):
        await fetch_remote(
            f"{host}/redirect?to=http://169.254.169.254/latest/meta-data/", allow_networks=LOOPBACK
        )
    assert net.non_loopback() == []


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "data:text/html,hi"]
)
async def test_redirect_to_other_schemes_is_refused(
    host: str, target: str, net: NetworkLog
) -> None:
    with pytest.raises(FetchRefused, match="redirect refused"):
        await fetch_remote(f"{host}/redirect?to={target}", allow_networks=LOOPBACK)
    assert net.non_loopback() == []


async def test_redirect_to_a_name_resolving_privately_is_refused(
    host: str, net: NetworkLog
) -> None:
    resolver = StubResolver({"internal.example": ["10.0.0.5"]})
    async with make_safe_client(LOOPBACK, resolver=resolver) as client:
        with pytest.raises(FetchRefused, match="no public address"):
            await fetch_remote(f"{host}/redirect?to=http://internal.example/", http=client)
    assert resolver.calls == ["internal.example"]
    assert net.non_loopback() == []


async def test_three_redirects_are_followed_four_are_not(host: str, net: NetworkLog) -> None:
    fetched = await fetch_remote(f"{host}/chain/3", allow_networks=LOOPBACK)
    assert fetched.data == JPEG and fetched.final_url == f"{host}/chain/0"
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        await fetch_remote(f"{host}/chain/4", allow_networks=LOOPBACK)


async def test_redirect_loop_terminates(host: str, net: NetworkLog) -> None:
    with pytest.raises(FetchRefused, match="redirects"):
        await fetch_remote(f"{host}/loop", allow_networks=LOOPBACK)


async def test_declared_length_over_cap_is_refused_before_reading(host: str) -> None:
    with pytest.raises(FetchTooLarge, match="1000000000"):
        await fetch_remote(f"{host}/huge.jpg", allow_networks=LOOPBACK)


async def test_endless_body_is_cut_at_the_cap(host: str) -> None:
    with pytest.raises(FetchTooLarge):
        await fetch_remote(f"{host}/endless.jpg", allow_networks=LOOPBACK, max_bytes=1 << 20)


async def test_gzip_bomb_is_capped_on_decoded_bytes_with_bounded_memory(host: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(FetchTooLarge):
            await fetch_remote(f"{host}/bomb.jpg", allow_networks=LOOPBACK, max_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The bomb inflates to 64 MiB; we never hold much more than the 1 MiB cap.
    assert peak < 8 << 20


async def test_gzip_body_is_decoded_and_the_cap_is_exact(host: str) -> None:
    fetched = await fetch_remote(f"{host}/gzipped.jpg", allow_networks=LOOPBACK)
    assert fetched.data == JPEG
    exact = await fetch_remote(f"{host}/image.jpg", allow_networks=LOOPBACK, max_bytes=len(JPEG))
    assert exact.data == JPEG
    with pytest.raises(FetchTooLarge):
        await fetch_remote(f"{host}/gzipped.jpg", allow_networks=LOOPBACK, max_bytes=len(JPEG) - 1)


async def test_slow_drip_hits_the_total_deadline(host: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        await fetch_remote(f"{host}/slow.jpg", allow_networks=LOOPBACK, deadline=1.0)
    assert time.monotonic() - started < 1.5


async def test_stalled_body_hits_the_read_timeout(host: str) -> None:
    timeout = httpx.Timeout(5.0, read=0.3)
    started = time.monotonic()
    async with make_safe_client(LOOPBACK, timeout=timeout) as client:
        with pytest.raises(FetchTimeout):
            await fetch_remote(f"{host}/stall.jpg", http=client)
    assert time.monotonic() - started < 2.0


async def test_http_errors_are_fetch_errors_with_status_and_no_query(host: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_remote(f"{host}/status/404?sig=SECRET", allow_networks=LOOPBACK)
    assert not isinstance(caught.value, FetchRefused)
    assert caught.value.http_status == 404
    assert "SECRET" not in str(caught.value) and "SECRET" not in caught.value.message
    with pytest.raises(FetchError) as limited:
        await fetch_remote(f"{host}/status/429", allow_networks=LOOPBACK)
    assert limited.value.retry_after == 7


async def test_connection_refused_is_a_transient_fetch_error(net: NetworkLog) -> None:
    with serve_app(media_host_app(bomb_size=1 << 20)) as base:
        pass  # the port is free again: nothing listens there now
    with pytest.raises(FetchError) as caught:
        await fetch_remote(f"{base}/image.jpg", allow_networks=LOOPBACK)
    assert not isinstance(caught.value, FetchRefused)


async def test_only_safe_clients_are_accepted() -> None:
    async with httpx.AsyncClient() as plain:
        with pytest.raises(TypeError):
            await fetch_remote("https://example.org/x.jpg", http=plain)  # type: ignore[arg-type]


def test_address_policy() -> None:
    ip = __import__("ipaddress").ip_address
    assert address_allowed(ip("93.184.215.14"))
    assert address_allowed(ip("2606:4700:4700::1111"))
    assert not address_allowed(ip("127.0.0.1"))
    assert address_allowed(ip("127.0.0.1"), LOOPBACK)
    assert not address_allowed(ip("::ffff:127.0.0.1"), LOOPBACK)  # wrappers need their own range
    assert not address_allowed(ip("100.100.100.200"))
    assert parse_networks(["10.0.0.0/8", " ", "fd00::/8 "]) == (
        __import__("ipaddress").ip_network("10.0.0.0/8"),
        __import__("ipaddress").ip_network("fd00::/8"),
    )


def test_check_url_accepts_normal_public_urls() -> None:
    assert str(check_url("https://files.mastodon.social/a/b.png?x=1")).startswith("https://")
    assert check_url("http://1.2.3.4./x").host == "1.2.3.4."
    assert check_url("http://[2606:4700::1]/").host == "2606:4700::1"
