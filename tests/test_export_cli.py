"""``aggregator export``: writes each format atomically; bad input is one clear line."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlmodel import Session

from aggregator.cli import cli
from aggregator.config import Settings
from tests.factories import make_campaign, make_event
from tests.slideshow_support import photo

Run = Callable[..., Result]


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """Invoke the CLI against the test database and media folder."""
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("AGGREGATOR_VAR_DIR", str(settings.var_dir))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.mark.parametrize(
    ("fmt", "name", "magic"),
    [
        ("bundle", "show.zip", b"PK"),
        ("pdf", "show.pdf", b"%PDF"),
        ("pptx", "show.pptx", b"PK"),
        ("poster", "poster.pdf", b"%PDF"),
        ("poster", "poster.png", b"\x89PNG"),
        ("archive", "archive.zip", b"PK"),
    ],
)
def test_export_each_format(
    run: Run, session: Session, app: Any, tmp_path: Path, fmt: str, name: str, magic: bytes
) -> None:
    campaign = make_campaign(session)
    event, _link = make_event(session, campaign)
    photo(session, app.state.storage, campaign)
    target = tmp_path / "out" / name
    target.parent.mkdir()
    target.write_bytes(b"old")  # replaced only when the new file is complete
    result = run("export", "--event", str(event.id), "--format", fmt, "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "1 photos" in result.output
    assert target.read_bytes().startswith(magic)
    assert [p.name for p in target.parent.iterdir()] == [name]
    if magic == b"PK":
        assert zipfile.ZipFile(target).testzip() is None


def test_export_errors_are_one_clear_line(run: Run, session: Session, tmp_path: Path) -> None:
    campaign = make_campaign(session)
    event, _link = make_event(session, campaign)
    missing = run("export", "--event", "999", "--format", "pdf", "-o", str(tmp_path / "x.pdf"))
    assert missing.exit_code == 1 and "There is no event 999" in missing.output
    assert "Traceback" not in missing.output
    bad = run("export", "--event", str(event.id), "--format", "gif", "-o", "x")
    assert bad.exit_code == 2 and "gif" in bad.output
    folder = run(
        "export",
        "--event",
        str(event.id),
        "--format",
        "pdf",
        "-o",
        str(tmp_path / "nowhere" / "x.pdf"),
    )
    assert folder.exit_code == 1 and "does not exist" in folder.output
    zero = run("export", "--event", "0", "--format", "pdf", "-o", "x.pdf")
    assert zero.exit_code == 2
