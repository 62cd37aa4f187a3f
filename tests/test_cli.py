"""The command line: every contract command works and bad input is one clear line, exit ≠ 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.cli import cli
from aggregator.config import Settings


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Invoke the CLI against the test database."""
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("AGGREGATOR_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("AGGREGATOR_PUBLIC_BASE_URL", "https://remember.example")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_help_lists_contract_commands(run) -> None:  # type: ignore[no-untyped-def]
    output = run("--help").output
    for command in (
        "init",
        "serve",
        "worker",
        "demo",
        "users",
        "campaigns",
        "sources",
        "collect",
        "submissions",
        "events",
    ):
        assert command in output


def test_full_configuration_flow(run) -> None:  # type: ignore[no-untyped-def]
    assert run("init").exit_code == 0
    created = run(
        "users",
        "add",
        "--email",
        "Admin@Example.org",
        "--role",
        "admin",
        "--password-stdin",
        input="a long enough secret\n",
    )
    assert created.exit_code == 0, created.output
    invite = run("users", "add", "--email", "host@example.org", "--role", "host")
    assert "https://remember.example/invite/" in invite.output
    result = run(
        "campaigns",
        "create",
        "--slug",
        "we-remember",
        "--name",
        "We Remember",
        "--hashtag",
        "#WeRemember",
        "--hashtag",
        "МыПомним",
    )
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in run("campaigns", "list", "--json").output.splitlines()]
    assert listed[0]["hashtags"] == ["weremember", "мыпомним"]
    source = run(
        "sources",
        "add",
        "--campaign",
        "we-remember",
        "--kind",
        "rss",
        "--url",
        "https://example.org/feed",
        "--interval",
        "600",
    )
    assert source.exit_code == 0, source.output
    rows = [json.loads(line) for line in run("sources", "list", "--json").output.splitlines()]
    assert rows[0]["kind"] == "rss" and rows[0]["interval"] == 600
    event = run("events", "create", "--campaign", "we-remember", "--name", "Evening")
    assert event.exit_code == 0
    assert "https://remember.example/show/" in event.output
    assert run("submissions", "list", "--campaign", "we-remember", "--json").output == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("campaigns", "create", "--slug", "Bad Slug!", "--name", "x", "--hashtag", "x"),
            "short name",
        ),
        (
            ("campaigns", "create", "--slug", "ok", "--name", "x", "--hashtag", "not a tag"),
            "Not a hashtag",
        ),
        (
            (
                "campaigns",
                "create",
                "--slug",
                "ok",
                "--name",
                "x",
                "--hashtag",
                "x",
                "--opens",
                "tomorrow",
            ),
            "ISO 8601",
        ),
        (
            ("sources", "add", "--campaign", "nope", "--kind", "rss", "--url", "https://x.org"),
            "no campaign",
        ),
        (("sources", "add", "--campaign", "nope", "--kind", "myspace"), "Invalid value"),
        (("submissions", "approve", "999"), "no submission 999"),
        (("submissions", "approve", "0"), "positive"),
        (("submissions", "approve", "abc"), "not a valid integer"),
        (("users", "add", "--email", "not-an-email", "--role", "admin"), "Not an e-mail"),
        (("events", "create", "--campaign", "nope", "--name", "x"), "no campaign"),
        (("collect", "--source", "12345", "--once"), "No source 12345"),
    ],
)
def test_bad_input_is_a_clear_error(run, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_short_password_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "users",
        "add",
        "--email",
        "a@example.org",
        "--role",
        "moderator",
        "--password-stdin",
        input="short\n",
    )
    assert result.exit_code == 1
    assert "at least 10 characters" in result.output


def test_moderation_from_the_command_line(run, session, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_campaign, make_submission

    campaign = make_campaign(session, slug="c")
    first = make_submission(session, campaign)
    second = make_submission(session, campaign)
    assert "is now approved" in run("submissions", "approve", str(first.id)).output
    assert run("submissions", "reject", str(second.id), "--reason", "off topic").exit_code == 0
    again = run("submissions", "approve", str(first.id))
    assert again.exit_code == 1 and "cannot become approved" in again.output
    assert "is now removed" in run("submissions", "remove", str(first.id)).output
    rows = [
        json.loads(line)
        for line in run("submissions", "list", "--campaign", "c", "--json").output.splitlines()
    ]
    assert [(r["id"], r["status"]) for r in rows] == [
        (first.id, "removed"),
        (second.id, "rejected"),
    ]
    assert set(rows[0]) == {
        "id",
        "status",
        "source_kind",
        "external_id",
        "url",
        "author",
        "text",
        "media_count",
    }
    assert rows[0]["media_count"] == 1
