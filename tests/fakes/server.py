"""Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; guard the network in tests."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn


class _ThreadServer(uvicorn.Server):
    # Signal handlers can only be installed from the main thread; the test runner owns them.
    def install_signal_handlers(self) -> None:
        return None


@contextmanager
def serve_app(app: Any, *, startup_timeout: float = 10.0, **options: Any) -> Iterator[str]:
    """Run ``app`` on a free loopback port for the duration of the block; yield its base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. ``ssl_certfile``/``ssl_keyfile`` for HTTPS,
    ``http="httptools"`` for a benchmark's server).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "off",
        "loop": "asyncio",
        "http": "h11",
        "ws": "none",
        "access_log": False,
        "timeout_graceful_shutdown": 2,
    }
    config = uvicorn.Config(app, **{**settings, **options})
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        scheme = "https" if options.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class NetworkLog:
    """What the process tried to reach while guarded: socket connects and name lookups."""

    connects: list[Any] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def non_loopback(self) -> list[Any]:
        """Connect attempts to anything but 127.0.0.0/8 or ::1."""
        return [a for a in self.connects if not _is_loopback(a)]


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_network(monkeypatch: pytest.MonkeyPatch) -> NetworkLog:
    """Record every socket connect and DNS lookup; refuse all but loopback (nothing leaves).

    A refused connect raises ``ConnectionRefusedError`` and a lookup of a real name raises
    ``socket.gaierror``, so a bug shows up as a failed test and never as a packet.
    """
    log = NetworkLog()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        log.connects.append(address)
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"test network guard: refused {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        log.connects.append(address)
        if not _is_loopback(address):
            return errno.ECONNREFUSED
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        log.lookups.append(name)
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            if name not in ("localhost",):
                raise socket.gaierror(socket.EAI_NONAME, "test network guard: no DNS") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return log


class AppSlot:
    """An ASGI app forwarding to ``target``: one served port, a fresh fake app per test."""

    def __init__(self, target: Any = None) -> None:
        self.target = target

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Forward to the current target."""
        await self.target(scope, receive, send)
