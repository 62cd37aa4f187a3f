"""Settings read from ``AGGREGATOR_*`` environment variables (and an optional ``.env``).

Every field carries a description; ``tests/test_config.py`` fails when one does not, and the
README's configuration table is generated from these descriptions (``scripts/settings_table``).
No instance exists at import time: ``Settings()`` is built by the CLI and by tests.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LANGUAGE_CODES = ("en", "ru", "kk", "he")


class Settings(BaseSettings):
    """All configuration of one installation."""

    model_config = SettingsConfigDict(
        env_prefix="AGGREGATOR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    var_dir: Path = Field(
        Path("var"),
        description="Folder for the default SQLite database, media and the generated secret key.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. "
        "Default: SQLite file var/aggregator.db.",
    )
    media_dir: Path | None = Field(
        None, description="Folder for processed images. Default: var/media."
    )
    secret_key: str | None = Field(
        None,
        description="Key for signing cookies and tokens. Default: generated once and kept in "
        "var/secret_key (never a built-in value).",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Address participants and hosts use to reach this server; used in QR codes, "
        "receipts and share links.",
    )
    languages: Annotated[tuple[str, ...], NoDecode] = Field(
        ("en", "ru", "kk", "he"),
        description="Enabled interface languages, comma separated (en, ru, kk, he).",
    )
    default_language: str = Field(
        "en",
        description="Language used when neither the visitor's choice nor their browser "
        "asks for an enabled one.",
    )
    upload_max_bytes: int = Field(
        16 * 1024 * 1024, description="Largest accepted image file in bytes (default 16 MiB)."
    )
    upload_max_pixels: int = Field(
        40_000_000, description="Largest accepted decoded image in pixels (default 40 MP)."
    )
    upload_max_files: int = Field(10, description="Most photos in one participant submission.")
    upload_rate_limit: int = Field(
        30, description="Uploads allowed per IP address (IPv6 per /64) per rate window."
    )
    upload_rate_window_seconds: int = Field(1800, description="Upload rate window in seconds.")
    login_rate_limit: int = Field(25, description="Login attempts allowed per IP per 5 minutes.")
    slide_width: int = Field(1920, description="Width of projected slide images (3840 for 4K).")
    slide_height: int = Field(1080, description="Height of projected slide images (2160 for 4K).")
    near_duplicate_distance: int = Field(
        8, description="Largest perceptual-hash Hamming distance that flags a near duplicate."
    )
    fetch_allow_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma separated networks (CIDR) that remote fetches may reach although "
        "private, e.g. 10.0.0.0/8 for an intranet feed. Empty: only public addresses.",
    )
    scheduler_enabled: bool = Field(
        True, description="Run the collector scheduler inside `aggregator serve`."
    )
    session_idle_minutes: int = Field(
        120, description="Moderator sessions end after this many idle minutes."
    )
    session_max_hours: int = Field(
        12, description="Moderator sessions end this many hours after login, however active."
    )
    pending_alert_minutes: int = Field(
        0, description="Notify when an item has waited longer than this (0: never)."
    )
    alert_webhook_url: str | None = Field(
        None, description="URL that receives a JSON POST when items wait too long."
    )
    smtp_url: str | None = Field(
        None,
        description="smtp://user:pass@host:port for e-mail alerts and invitations (optional).",
    )
    alert_email: str | None = Field(None, description="Address that receives waiting-item alerts.")
    trust_proxy_headers: bool = Field(
        False,
        description="Take the client address from X-Forwarded-For (only behind your own proxy).",
    )

    @field_validator("languages", "fetch_allow_networks", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if code not in LANGUAGE_CODES]
        if unknown or not value:
            raise ValueError(f"languages must be among {', '.join(LANGUAGE_CODES)}; got {value}")
        return value

    @field_validator("fetch_allow_networks")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    # Derived values: one place decides the defaults that depend on var_dir.

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in ``var_dir``."""
        return self.database_url or f"sqlite:///{(self.var_dir / 'aggregator.db').resolve()}"

    @property
    def effective_media_dir(self) -> Path:
        """The media folder, defaulting to ``var_dir/media``."""
        return self.media_dir or self.var_dir / "media"

    @property
    def allow_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``fetch_allow_networks`` parsed."""
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.fetch_allow_networks)

    def effective_secret_key(self) -> str:
        """The secret key; generated once into ``var_dir/secret_key`` when not configured."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{secrets.token_hex(8)}")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            # link() fails if another process won the race; then both use the winner's key.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_text().strip()
