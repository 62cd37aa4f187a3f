"""Safe fetching of URLs found in remote payloads (media): SSRF guard, redirects, caps, deadline.

Every address is checked when the socket is opened, not only when the URL is parsed: the
network backend below resolves the host itself, drops non-public answers and dials the vetted
IP, so DNS rebinding between a check and a connect is impossible (Mastodon's ``Request`` and
Discourse's ``SSRFDetector`` do the same). TLS SNI and the Host header still use the name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpcore
import httpx

from aggregator.collectors.http import (
    ACCEPT_ENCODING,
    CONNECT_TIMEOUT,
    MAX_REDIRECTS,
    MEDIA_MAX_BYTES,
    TOTAL_TIMEOUT,
    USER_AGENT,
    BodyTooLarge,
    api_timeout,
    read_capped,
    redact_url,
    retry_after_seconds,
)
from aggregator.errors import CollectorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> IP address strings. Injectable so tests never send a DNS packet.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_BLOCKED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved and broadcast
        "::/128",  # CVE-2026-46348: "::" reaches localhost
        "::1/128",
        "::/96",  # deprecated IPv4-compatible addresses
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo (embeds IPv4)
        "2001:db8::/32",
        "2002::/16",  # 6to4 (embeds IPv4)
        "fc00::/7",  # ULA, incl. AWS metadata fd00:ec2::254
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_CANONICAL_V4 = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)


class FetchError(CollectorError):
    """A remote file could not be fetched (network failure or an HTTP error status)."""

    code = "fetch_failed"

    def __init__(
        self, message: str, *, retry_after: float | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.http_status = http_status


class FetchRefused(FetchError):
    """We refused to fetch: scheme, credentials, address, redirects or size not allowed."""

    code = "fetch_refused"


class FetchTooLarge(FetchRefused):
    """The body exceeded the byte cap (declared, or counted after decoding while streaming)."""

    code = "fetch_too_large"


class FetchTimeout(FetchError):
    """The remote did not answer completely within the timeouts or the total deadline."""

    code = "fetch_timeout"


@dataclass(frozen=True)
class FetchedFile:
    """A fetched body with the declared type and the URL it finally came from."""

    data: bytes
    content_type: str | None
    final_url: str


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDR strings (e.g. from ``AGGREGATOR_FETCH_ALLOW_NETWORKS``)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def address_allowed(ip: IPAddress, allow_networks: Sequence[Network] = ()) -> bool:
    """True when ``ip`` is public, or inside one of ``allow_networks``."""
    if any(ip.version == net.version and ip in net for net in allow_networks):
        return True
    if any(ip.version == net.version and ip in net for net in _BLOCKED):
        return False
    return ip.is_global and not ip.is_multicast


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_local_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


def _check_host(host: str, allow_networks: Sequence[Network]) -> None:
    if not host:
        raise FetchRefused("URL has no host")
    if "%" in host:
        raise FetchRefused("IPv6 zone identifiers are not allowed")
    bare = host.rstrip(".")
    ip = _literal_ip(bare)
    if ip is None and _NUMERIC_HOST.match(bare) and not _CANONICAL_V4.match(bare):
        # 2130706433, 0x7f.0.0.1, 017700000001, 127.1: the C resolver reads them as IPs.
        try:
            socket.inet_aton(bare)
        except OSError:
            pass
        else:
            raise FetchRefused(f"non-canonical IP address spelling {host!r} is not allowed")
    if ip is not None and not address_allowed(ip, allow_networks):
        raise FetchRefused(f"address {ip} is not public")
    loopback = ipaddress.ip_address("127.0.0.1")
    if _is_local_name(bare) and not any(loopback in n for n in allow_networks if n.version == 4):
        raise FetchRefused(f"host {host!r} is local")


def check_url(url: str | httpx.URL, allow_networks: Sequence[Network] = ()) -> httpx.URL:
    """Parse and vet a URL before any I/O; raise ``FetchRefused`` when it may not be fetched."""
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchRefused("invalid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchRefused(f"scheme {parsed.scheme or '(none)'!r} is not allowed (http/https only)")
    if parsed.userinfo:
        raise FetchRefused("URLs with user names or passwords are not allowed")
    _check_host(parsed.host, allow_networks)
    return parsed


async def _system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that only dials vetted public (or allowed) addresses."""

    def __init__(
        self,
        allow_networks: Sequence[Network] = (),
        *,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_networks = tuple(allow_networks)
        self.resolver = resolver or _system_resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[str]:
        _check_host(host, self.allow_networks)
        literal = _literal_ip(host.rstrip("."))
        if literal is not None:
            return [str(literal)]
        try:
            with anyio.fail_after(CONNECT_TIMEOUT):
                answers = await self.resolver(host, port)
        except TimeoutError:
            raise FetchTimeout(f"resolving {host!r} timed out") from None
        except OSError as exc:
            raise FetchError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
        vetted: list[str] = []
        for answer in answers:
            ip = _literal_ip(answer.split("%", 1)[0])
            # A mixed answer keeps only its public addresses (Discourse does the same).
            if ip is not None and address_allowed(ip, self.allow_networks):
                if str(ip) not in vetted:
                    vetted.append(str(ip))
        if not vetted:
            raise FetchRefused(f"host {host!r} resolves to no public address")
        return vetted

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, drop non-public answers, and connect to the first reachable one."""
        last: Exception | None = None
        for address in await self._addresses(host, port):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Never: remote payloads cannot name a local socket."""
        raise FetchRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the inner backend."""
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: GuardedBackend, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(trust_env=False, retries=0)
        # httpx has no public hook for a network backend; swap the pool it just built for one
        # that is identical except for the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


class SafeAsyncClient(httpx.AsyncClient):
    """An httpx client that only reaches public addresses (or ``allow_networks``)."""

    def __init__(
        self, backend: GuardedBackend, ssl_context: ssl.SSLContext | None = None, **kwargs: Any
    ) -> None:
        super().__init__(transport=_GuardedTransport(backend, ssl_context), **kwargs)
        self.backend = backend


def make_safe_client(
    allow_networks: Sequence[Network] = (),
    *,
    resolver: Resolver | None = None,
    timeout: httpx.Timeout | None = None,
    inner: httpcore.AsyncNetworkBackend | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> SafeAsyncClient:
    """A client for remote media: vetted addresses, no proxies from env, no auto-redirects.

    ``resolver``/``inner`` replace DNS and the socket layer (tests); ``ssl_context`` adds CAs.
    """
    backend = GuardedBackend(allow_networks, resolver=resolver, inner=inner)
    return SafeAsyncClient(
        backend,
        ssl_context,
        timeout=timeout or api_timeout(),
        follow_redirects=False,  # fetch_remote follows by hand, re-checking every hop
        trust_env=False,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
    )


async def _fetch(
    client: SafeAsyncClient, url: httpx.URL, max_bytes: int, max_redirects: int
) -> FetchedFile:
    allow = client.backend.allow_networks
    for hop in range(max_redirects + 1):
        request = client.build_request("GET", url, headers={"Accept": "image/*,*/*;q=0.5"})
        response = await client.send(request, stream=True)
        try:
            if response.is_redirect:
                if hop == max_redirects:
                    raise FetchRefused(f"more than {max_redirects} redirects")
                try:
                    target = url.join(response.headers["location"])
                except (httpx.InvalidURL, ValueError):
                    raise FetchRefused("redirect refused: invalid Location") from None
                try:
                    url = check_url(target, allow)
                except FetchRefused as exc:
                    raise FetchRefused(f"redirect refused: {exc.message}") from None
                continue
            if response.status_code != 200:
                raise FetchError(
                    f"HTTP {response.status_code}",
                    http_status=response.status_code,
                    retry_after=_retry_after(response),
                )
            try:
                data = await read_capped(response, max_bytes)
            except BodyTooLarge as exc:
                raise FetchTooLarge(exc.message) from None
            declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return FetchedFile(data=data, content_type=declared or None, final_url=str(url))
        finally:
            await response.aclose()
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response) if response.status_code in (429, 503) else None


async def fetch_remote(
    url: str,
    *,
    http: SafeAsyncClient | None = None,
    max_bytes: int = MEDIA_MAX_BYTES,
    allow_networks: Sequence[Network] = (),
    deadline: float = TOTAL_TIMEOUT,
    max_redirects: int = MAX_REDIRECTS,
) -> FetchedFile:
    """GET ``url`` safely: http(s) only, vetted IPs on every hop, size cap, total deadline.

    ``http`` must come from ``make_safe_client`` (its own ``allow_networks`` then apply);
    without it a client is made for this call from ``allow_networks``.
    Raises ``FetchRefused``/``FetchTooLarge``/``FetchTimeout``/``FetchError`` (all
    ``CollectorError``), with the URL's query string never in the message.
    """
    if http is not None and not isinstance(http, SafeAsyncClient):
        raise TypeError("fetch_remote needs a client from make_safe_client()")
    client = http or make_safe_client(allow_networks)
    shown = redact_url(url)
    try:
        checked = check_url(url, client.backend.allow_networks)
        with anyio.fail_after(deadline):
            return await _fetch(client, checked, max_bytes, max_redirects)
    except TimeoutError:
        raise FetchTimeout(f"{shown}: no complete answer within {deadline:g} s") from None
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"{shown}: timed out ({type(exc).__name__})") from None
    except httpx.InvalidURL:
        # httpx parses a redirect's Location even when it does not follow it.
        raise FetchRefused(f"{shown}: redirect refused: invalid Location") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{shown}: {type(exc).__name__}") from None
    except CollectorError as exc:
        exc.message = f"{shown}: {exc.message}"
        exc.args = (exc.message,)
        raise
    finally:
        if http is None:
            await client.aclose()
