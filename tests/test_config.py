"""Settings: every field documented, defaults derived from var_dir, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aggregator.config import Settings


def test_every_setting_is_documented() -> None:
    undocumented = [
        name
        for name, field in Settings.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undocumented == []


def test_readme_lists_every_setting() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"AGGREGATOR_{n.upper()}" not in readme]
    assert missing == []


def test_defaults_live_under_var_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.effective_database_url == f"sqlite:///{(tmp_path / 'aggregator.db').resolve()}"
    assert settings.effective_media_dir == tmp_path / "media"


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    first = settings.effective_secret_key()
    assert len(first) >= 48
    assert Settings(_env_file=None, var_dir=tmp_path).effective_secret_key() == first  # type: ignore[call-arg]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    other = Settings(_env_file=None, var_dir=tmp_path / "other")  # type: ignore[call-arg]
    assert other.effective_secret_key() != first


def test_languages_and_networks_parse_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_LANGUAGES", "ru, kk")
    monkeypatch.setenv("AGGREGATOR_FETCH_ALLOW_NETWORKS", "10.0.0.0/8,fd00::/8")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.languages == ("ru", "kk")
    assert [str(n) for n in settings.allow_networks] == ["10.0.0.0/8", "fd00::/8"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("AGGREGATOR_LANGUAGES", "en,xx"), ("AGGREGATOR_FETCH_ALLOW_NETWORKS", "not-a-network")],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
