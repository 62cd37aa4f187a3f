"""The upload path's kept copy of a campaign: how long it lives and what lets it go."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, text
from sqlmodel import Session

from aggregator.db import make_engine
from aggregator.errors import NotFound
from aggregator.models import Campaign
from aggregator.services import campaigns
from aggregator.services.campaigns import kept_campaign
from tests.factories import make_campaign


def rename_behind_the_orm(engine: Engine, slug: str, name: str) -> None:
    """A change the process cannot see coming (another process, or plain SQL)."""
    with engine.begin() as connection:
        rename = text("UPDATE campaign SET name = :name WHERE slug = :slug")
        connection.execute(rename, {"name": name, "slug": slug})


def kept_name(engine: Engine, slug: str) -> str:
    """The name the upload path sees now, from a fresh session."""
    with Session(engine) as reader:
        return kept_campaign(session=reader, slug=slug).name


def test_a_kept_campaign_is_read_again_after_keep_seconds(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = make_campaign(session, name="Before")
    clock = [1000.0]
    monkeypatch.setattr(campaigns.time, "monotonic", lambda: clock[0])
    assert kept_name(engine, campaign.slug) == "Before"
    rename_behind_the_orm(engine, campaign.slug, "After")
    clock[0] += campaigns.KEEP_SECONDS / 2
    with Session(engine) as reader:
        kept = kept_campaign(session=reader, slug=campaign.slug)
        assert kept.name == "Before"  # within KEEP_SECONDS the copy answers
        assert kept not in reader  # detached: no session owns the shared copy
    clock[0] += campaigns.KEEP_SECONDS
    assert kept_name(engine, campaign.slug) == "After"


def test_a_campaign_saved_in_this_process_is_read_again_at_once(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, name="Before")
    assert kept_name(engine, campaign.slug) == "Before"
    campaign.name = "After"
    session.add(campaign)
    session.commit()
    assert kept_name(engine, campaign.slug) == "After"


def test_copies_are_kept_per_database_and_a_missing_campaign_never(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = make_campaign(session, name="Here")
    monkeypatch.setattr(campaigns.time, "monotonic", lambda: 1000.0)  # nothing expires here
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        assert kept_name(engine, campaign.slug) == "Here"
        rename_behind_the_orm(engine, campaign.slug, "Renamed")
        assert kept_name(other, campaign.slug) == "Renamed"  # another engine: its own copies
        assert kept_name(engine, campaign.slug) == "Here"
        with Session(engine) as reader, pytest.raises(NotFound):
            kept_campaign(session=reader, slug="late")
        table = Campaign.__table__  # type: ignore[attr-defined]
        row = {c.name: getattr(campaign, c.name) for c in table.columns if c.name != "id"}
        with engine.begin() as connection:  # Core, not the ORM: nothing is let go
            connection.execute(insert(table).values({**row, "slug": "late"}))
        with Session(engine) as reader:
            assert kept_campaign(session=reader, slug="late").slug == "late"
    finally:
        other.dispose()
