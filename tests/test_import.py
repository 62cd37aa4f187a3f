"""`aggregator submissions import`: photos from e-mail or a USB stick into the queue."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlmodel import Session, select

from aggregator.cli import cli
from aggregator.config import Settings
from aggregator.models import MediaAsset, Origin, Submission, SubmissionStatus
from tests.factories import make_campaign
from tests.media_samples import heic, photo, truncated
from tests.upload_support import photo_jpeg

Run = Callable[..., Result]


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """Invoke the CLI against the test database (stdout and stderr kept apart)."""
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("AGGREGATOR_VAR_DIR", str(settings.var_dir))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def stick(tmp_path: Path) -> Path:
    """A folder as it arrives on a USB stick: photos, a nested folder, junk and hidden files."""
    root = tmp_path / "stick"
    (root / "family").mkdir(parents=True)
    (root / "IMG_0001.JPG").write_bytes(photo_jpeg(1))
    (root / "family" / "IMG_0002.HEIC").write_bytes(heic(photo(seed=2)))
    (root / "notes.txt").write_text("Photos from the school, 27 January")
    (root / "broken.jpg").write_bytes(truncated(photo_jpeg(3)))
    (root / ".hidden.jpg").write_bytes(photo_jpeg(4))
    (root / "Thumbs.db").write_bytes(b"junk")
    return root


def test_a_folder_is_imported_one_submission_per_photo(
    run: Run, stick: Path, session: Session, settings: Settings
) -> None:
    campaign = make_campaign(session)
    result = run(
        "submissions",
        "import",
        "--campaign",
        campaign.slug,
        "--author",
        "School No. 5",
        "--city",
        "Karaganda",
        "--consent",
        "projection,archive",
        str(stick),
    )
    assert result.exit_code == 1  # two files were refused
    assert "Imported 2 photo(s) into the moderation queue" in result.stdout
    assert "Refused 2 file(s):" in result.stderr
    assert "notes.txt: This kind of file is not supported" in result.stderr
    assert "broken.jpg:" in result.stderr and "Thumbs.db" not in result.stderr
    assert ".hidden" not in result.output
    session.rollback()
    submissions = session.exec(select(Submission).order_by(Submission.id)).all()  # type: ignore[arg-type]
    assert len(submissions) == 2
    for submission in submissions:
        assert submission.origin == Origin.import_
        assert submission.status == SubmissionStatus.pending
        assert submission.consent == ["projection", "archive"]
        assert (submission.author_name, submission.city) == ("School No. 5", "Karaganda")
        assert submission.receipt_token_hash is None
    assets = session.exec(select(MediaAsset)).all()
    assert {a.source_format for a in assets} == {"jpeg", "heif"}
    assert all(
        (settings.effective_media_dir / k).is_file() for a in assets for k in a.keys.values()
    )
    listed = run("submissions", "list", "--campaign", campaign.slug, "--json")
    assert [json.loads(line)["source_kind"] for line in listed.stdout.splitlines()] == [
        "import",
        "import",
    ]


def test_importing_the_same_photos_again_refuses_duplicates(
    run: Run, tmp_path: Path, session: Session
) -> None:
    campaign = make_campaign(session)
    one = tmp_path / "one.jpg"
    one.write_bytes(photo_jpeg(9))
    assert run("submissions", "import", "--campaign", campaign.slug, str(one)).exit_code == 0
    again = run("submissions", "import", "--campaign", campaign.slug, str(one))
    assert again.exit_code == 1
    assert "already imported (submission" in again.stderr
    session.rollback()
    assert len(session.exec(select(Submission)).all()) == 1


def test_bad_arguments_are_clear_errors(run: Run, tmp_path: Path, session: Session) -> None:
    campaign = make_campaign(session)
    photo_path = tmp_path / "a.jpg"
    photo_path.write_bytes(photo_jpeg())
    unknown = run("submissions", "import", "--campaign", "nope", str(photo_path))
    assert unknown.exit_code == 1 and "There is no campaign 'nope'" in unknown.stderr
    consent = run(
        "submissions",
        "import",
        "--campaign",
        campaign.slug,
        "--consent",
        "everything",
        str(photo_path),
    )
    assert consent.exit_code == 2 and "projection, web, archive" in consent.stderr
    missing = run("submissions", "import", "--campaign", campaign.slug, str(tmp_path / "x"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("submissions", "import", "--campaign", campaign.slug, str(empty))
    assert nothing.exit_code == 1 and "No files found" in nothing.stderr
    assert "Traceback" not in unknown.output + consent.output + nothing.output
