"""Fake remote APIs (one ASGI app per platform) and a helper to serve them on loopback."""
