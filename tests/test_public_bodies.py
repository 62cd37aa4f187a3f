"""Public pages kept between commits (web/body_cache.py, commit_stamp.py): a repeat visit
runs no query, and any commit, through the services or not, in whatever order transactions
commit, shows on the very next request."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from aggregator.commit_stamp import CommitStamp
from aggregator.db import make_engine
from tests.factories import make_campaign
from tests.gallery_support import approved

PUBLIC_PATHS = (
    "/c/{slug}/gallery",
    "/c/{slug}/embed",
    "/c/{slug}/p/{public_id}",
    "/c/{slug}/feed.xml",
    "/api/v1/campaigns/{slug}/items",
    "/api/v1/campaigns",
)


def api_captions(client: TestClient, slug: str) -> list[str]:
    response = client.get(f"/api/v1/campaigns/{slug}/items")
    assert response.status_code == 200, response.text
    return [item["caption"] for item in response.json()["items"]]


def test_stamp_moves_when_another_connection_commits_and_only_then(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session)
    stamp = CommitStamp(engine)
    try:
        before = stamp.read()
        assert before is not None
        assert stamp.read() == before
        with engine.connect() as conn:
            conn.execute(
                text("UPDATE campaign SET name = 'Renamed' WHERE id = :id"), {"id": campaign.id}
            )
            assert stamp.read() == before  # not committed yet
            conn.commit()
        after = stamp.read()
        assert after != before
        assert stamp.read() == after
    finally:
        stamp.close()


def test_in_memory_sqlite_has_no_stamp_so_nothing_is_kept() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        engine = make_engine(url)
        try:
            assert CommitStamp(engine).read() is None
        finally:
            engine.dispose()


def test_a_repeat_visit_runs_no_query(app: Any, client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    item = approved(session, campaign, text="We remember grandfather.")
    paths = [p.format(slug=campaign.slug, public_id=item.public_id) for p in PUBLIC_PATHS]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    stamp = app.state.public_bodies.stamp
    # PostgreSQL's stamp is the whole server's: another database's commit moves it too (a
    # re-read, never a stale page). Judge a round in which the stamp held still.
    for _attempt in range(10):
        before = stamp.read()
        first = {path: client.get(path) for path in paths}
        assert all(r.status_code == 200 for r in first.values()), {
            p: r.status_code for p, r in first.items()
        }
        statements.clear()
        event.listen(app.state.engine, "before_cursor_execute", record)
        try:
            again = {path: client.get(path) for path in paths}
        finally:
            event.remove(app.state.engine, "before_cursor_execute", record)
        if stamp.read() == before:
            break
    else:
        raise AssertionError("the database never held still for two rounds of visits")
    assert {p: r.content for p, r in again.items()} == {p: r.content for p, r in first.items()}
    assert statements == []  # the stamp is read on a connection of its own


def test_a_change_made_outside_the_services_shows_on_the_next_request(
    engine: Engine, client: TestClient, session: Session
) -> None:
    campaign = make_campaign(session)
    item = approved(session, campaign, text="We remember.")
    photo_path = f"/c/{campaign.slug}/p/{item.public_id}"
    assert api_captions(client, campaign.slug) == ["We remember."]
    assert "We remember." in client.get(photo_path).text
    with engine.begin() as conn:  # as an operator's psql would
        conn.execute(
            text("UPDATE submission SET text = 'Corrected caption' WHERE id = :id"),
            {"id": item.id},
        )
    assert api_captions(client, campaign.slug) == ["Corrected caption"]
    assert "Corrected caption" in client.get(photo_path).text
    assert "Corrected caption" in client.get(f"/c/{campaign.slug}/feed.xml").text


def test_a_takedown_that_commits_after_a_later_transaction_still_shows_at_once(
    engine: Engine, client: TestClient, session: Session
) -> None:
    campaign = make_campaign(session)
    item = approved(session, campaign, text="Soon taken down.")
    other = make_campaign(session)
    with engine.connect() as takedown:
        takedown.execute(
            text("UPDATE submission SET status = 'removed' WHERE id = :id"), {"id": item.id}
        )
        if engine.dialect.name == "postgresql":
            # A transaction that began writing later commits first. A stamp taken from
            # max(id) of a table would now stand still when the takedown commits.
            with engine.begin() as later:
                later.execute(
                    text("UPDATE campaign SET name = 'Later' WHERE id = :id"), {"id": other.id}
                )
        assert api_captions(client, campaign.slug) == ["Soon taken down."]  # not committed
        assert item.public_id in client.get(f"/c/{campaign.slug}/gallery").text
        takedown.commit()
    assert api_captions(client, campaign.slug) == []
    assert item.public_id not in client.get(f"/c/{campaign.slug}/gallery").text
    assert item.public_id not in client.get(f"/c/{campaign.slug}/feed.xml").text


def test_stamp_survives_a_dropped_connection(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    stamp = CommitStamp(engine)
    try:
        before = stamp.read()
        assert before is not None
        stamp._watcher.dbapi_connection.close()  # as when the server restarts
        reopened = stamp.read()
        assert reopened not in (None, before)  # a new connection's count is not comparable
        assert stamp.read() == reopened
        with engine.begin() as conn:
            conn.execute(text("UPDATE campaign SET name = 'X' WHERE id = :id"), {"id": campaign.id})
        assert stamp.read() != reopened
    finally:
        stamp.close()


def test_watcher_is_closed_with_its_stamp_even_without_close(engine: Engine) -> None:
    stamp = CommitStamp(engine)
    assert stamp.read() is not None
    connection = stamp._watcher.dbapi_connection
    del stamp
    gc.collect()
    with pytest.raises(engine.dialect.loaded_dbapi.Error):
        connection.cursor().execute("SELECT 1")
