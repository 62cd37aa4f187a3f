"""A plain, non-editable install serves every page: templates, static files, catalogs and
migrations ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SMOKE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import aggregator
    assert "site" in aggregator.__file__ or sys.argv[1] in aggregator.__file__, aggregator.__file__
    from fastapi.testclient import TestClient
    from aggregator.app import create_app
    from aggregator.config import Settings
    from aggregator.db import make_engine, migrate
    from aggregator.services.campaigns import create_campaign
    from sqlmodel import Session
    settings = Settings(_env_file=None, var_dir=Path(sys.argv[2]), scheduler_enabled=False)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    with Session(engine) as session:
        create_campaign(session=session, slug="c", name="C", hashtags=["x"])
    with TestClient(create_app(settings)) as client:
        for path in ["/", "/?lang=ru", "/c/c", "/c/c/gallery", "/c/c/feed.xml",
                     "/static/css/base.css", "/login", "/healthz", "/docs"]:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        assert "Мы помним" in client.get("/?lang=ru").text
    print("ok")
    """
)


def test_wheel_contains_and_serves_everything(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = wheel_dir.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in [
        "aggregator/templates/base.html",
        "aggregator/static/css/base.css",
        "aggregator/locale/ru/LC_MESSAGES/core.po",
        "aggregator/migrations/env.py",
        "aggregator/migrations/versions/0001_initial.py",
    ]:
        assert expected in names
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    # Run from an empty folder with the installed copy first on the path, not the checkout.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(target)!r}); "
            f"sys.path.remove({str(ROOT)!r}) if {str(ROOT)!r} in sys.path else None; "
            + "exec(sys.stdin.read())",
            str(target),
            str(tmp_path / "var"),
        ],
        input=SMOKE,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
