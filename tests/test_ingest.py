"""The one ingest path: idempotence, duplicate flags, rules, receipts, whole pages."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.media import process_image
from aggregator.media.storage import LocalStorage
from aggregator.models import (
    AuditEntry,
    Campaign,
    MediaAsset,
    ModerationMode,
    Origin,
    Rule,
    RuleKind,
    Source,
    Submission,
)
from aggregator.models import SubmissionStatus as S
from aggregator.services.ingest import Incoming, IncomingImage, Ingested, ingest, ingest_page
from aggregator.services.rules import add_rule, contains_phrase
from aggregator.services.users import hash_token
from tests.factories import DiskFullAfter, jpeg_bytes, make_campaign, make_source


def _incoming(image_bytes: bytes, **kw: object) -> Incoming:
    values: dict[str, object] = {"origin": Origin.collected, "author_name": "Aigerim", **kw}
    return Incoming(images=[IncomingImage(process_image(image_bytes), "a sign")], **values)  # type: ignore[arg-type]


def _collecting(settings: Settings, session: Session) -> tuple[LocalStorage, Campaign, Source]:
    """Media storage, a campaign and a source collecting into it."""
    campaign = make_campaign(session)
    return LocalStorage(settings.effective_media_dir), campaign, make_source(session, campaign)


def test_same_external_id_is_stored_once(settings: Settings, session: Session) -> None:
    storage, campaign, source = _collecting(settings, session)
    first = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        source=source,
        incoming=_incoming(jpeg_bytes(), external_id="uri-1", text="v1"),
    )
    again = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        source=source,
        incoming=_incoming(jpeg_bytes(), external_id="uri-1", text="v2 (edited)"),
    )
    assert first.created and not again.created
    assert again.submission.id == first.submission.id
    assert again.submission.text == "v2 (edited)"  # still pending: the edit is shown
    assert len(session.exec(select(MediaAsset)).all()) == 1


def test_exact_and_near_duplicates_are_flagged_not_dropped(
    settings: Settings, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    photo = jpeg_bytes(900, 700, (150, 60, 40))
    original = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=_incoming(photo, origin=Origin.upload),
    )
    copy = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=_incoming(photo, origin=Origin.upload),
    )
    assert copy.created
    assert "near_duplicate" in copy.submission.flags
    assets = session.exec(select(MediaAsset).order_by(MediaAsset.id)).all()  # type: ignore[arg-type]
    assert assets[1].duplicate_of_id == assets[0].id
    assert "near_duplicate" not in original.submission.flags


def test_a_duplicate_points_at_the_very_image_it_repeats_within_a_page(
    settings: Settings, session: Session
) -> None:
    """Each stored asset's id is known to the items after it, image by image (the second
    image of a post, not the first, when that is the one repeated)."""
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    red, blue = jpeg_bytes(900, 700, (200, 30, 30)), jpeg_bytes(700, 900, (30, 30, 200))
    two = Incoming(
        origin=Origin.upload,
        author_name="Aigerim",
        images=[IncomingImage(process_image(red), ""), IncomingImage(process_image(blue), "")],
    )
    ingest_page(
        session=session,
        storage=storage,
        campaign=campaign,
        incomings=[two, _incoming(blue, origin=Origin.upload)],
    )
    session.commit()
    first, repeat = (
        session.exec(select(MediaAsset).where(MediaAsset.submission_id == submission.id)).all()
        for submission in session.exec(select(Submission).order_by(Submission.id))  # type: ignore[arg-type]
    )
    by_position = {asset.position: asset for asset in first}
    assert [asset.duplicate_of_id for asset in repeat] == [by_position[1].id]
    assert by_position[0].duplicate_of_id is None and by_position[1].duplicate_of_id is None


def test_rules_hold_blocked_words_and_approve_trusted_authors(
    settings: Settings, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session, moderation_mode=ModerationMode.auto_trusted)
    for kind, value in [(RuleKind.blocked_word, "фейк"), (RuleKind.trusted_author, "Aigerim")]:
        session.add(Rule(campaign_id=campaign.id, kind=kind, value=value))  # type: ignore[arg-type]
    session.commit()
    trusted = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=_incoming(jpeg_bytes(), text="Біз еске аламыз"),
    )
    assert trusted.submission.status == S.approved
    held = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=_incoming(jpeg_bytes(color=(1, 2, 3)), text="Это ФЕЙК!"),
    )
    assert held.submission.status == S.pending
    assert "rule:фейк" in held.submission.flags
    # A word inside a longer word is not a hit (Unicode word boundaries).
    inside = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        incoming=_incoming(jpeg_bytes(color=(9, 9, 9)), text="фейковый"),
    )
    assert inside.submission.status == S.approved


def test_receipt_token_is_returned_once_and_stored_hashed(
    settings: Settings, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    result = ingest(
        session=session,
        storage=storage,
        campaign=campaign,
        with_receipt=True,
        incoming=_incoming(jpeg_bytes(), origin=Origin.upload),
    )
    assert result.receipt_token and len(result.receipt_token) >= 22  # ≥ 128 bits
    stored = session.exec(select(Submission)).one()
    assert stored.receipt_token_hash == hash_token(result.receipt_token)
    assert result.receipt_token not in str(stored.model_dump())


def _text(external_id: str, text: str, **kw: object) -> Incoming:
    values: dict[str, object] = {"origin": Origin.collected, "author_name": "Aigerim", **kw}
    return Incoming(images=[], external_id=external_id, text=text, **values)  # type: ignore[arg-type]


def _page(
    session: Session,
    storage: LocalStorage,
    campaign: Campaign,
    source: Source,
    incomings: list[Incoming],
    **kw: object,
) -> list[Ingested]:
    """One collector page: its items and the cursor after them in one transaction."""
    results = ingest_page(
        session=session,
        storage=storage,
        campaign=campaign,
        source=source,
        incomings=incomings,
        **kw,  # type: ignore[arg-type]
    )
    source.cursor = {"after": incomings[-1].external_id}
    session.add(source)
    session.commit()
    return results


def _count(session: Session, model: type[Submission] | type[AuditEntry]) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def _audits(session: Session) -> dict[int, AuditEntry]:
    entries = session.exec(select(AuditEntry).where(AuditEntry.action == "ingest")).all()
    return {int(entry.submission_id or 0): entry for entry in entries}


def test_page_decides_each_item_and_stores_a_repeated_id_once(
    settings: Settings, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session, moderation_mode=ModerationMode.auto_trusted)
    source = make_source(session, campaign)
    for kind, value in [(RuleKind.blocked_word, "фейк"), (RuleKind.trusted_author, "Aigerim")]:
        session.add(Rule(campaign_id=campaign.id, kind=kind, value=value))  # type: ignore[arg-type]
    session.commit()
    results = _page(
        session,
        storage,
        campaign,
        source,
        [
            _text("a", "Біз еске аламыз"),
            _text("b", "Это ФЕЙК!"),
            _text("c", "We remember", sensitive=True),
            _text("b", "Это правда (edited)"),  # the same post again in the same page
            _text("a", "edited after approval"),
            _text("d", "Мы помним", author_name="Someone else"),
        ],
        with_receipt=[True, False, False, False, False, True],
    )
    assert [r.created for r in results] == [True, True, True, False, False, True]
    a, b, c, b_again, a_again, d = (r.submission for r in results)
    assert b_again is b and a_again is a
    assert (a.status, a.flags, a.text) == (S.approved, [], "Біз еске аламыз")
    # Still pending, so the later copy is what moderators read; the rule flag stays.
    assert (b.status, b.flags, b.text) == (S.pending, ["rule:фейк"], "Это правда (edited)")
    assert (c.status, c.flags) == (S.pending, ["sensitive"])  # trusted, but sensitive
    assert (d.status, d.flags) == (S.pending, [])
    assert [bool(r.receipt_token) for r in results] == [True, False, False, False, False, True]
    assert d.receipt_token_hash == hash_token(results[5].receipt_token or "")

    session.expire_all()  # what was committed, not what the session remembers
    stored = {s.external_id: s for s in session.exec(select(Submission)).all()}
    assert sorted(stored) == ["a", "b", "c", "d"]
    assert stored["b"].text == "Это правда (edited)" and stored["a"].text == "Біз еске аламыз"
    assert len({s.public_id for s in stored.values()}) == 4
    audits = _audits(session)
    assert _count(session, AuditEntry) == 4
    for item in stored.values():
        entry = audits[int(item.id or 0)]
        assert (entry.actor_label, entry.to_status) == ("system", item.status.value)
        assert entry.reason == ", ".join(item.flags)
        assert entry.detail == {"origin": "collected", "images": 0}


def test_page_overlapping_stored_items_creates_only_the_new_ones(
    settings: Settings, session: Session
) -> None:
    storage, campaign, source = _collecting(settings, session)
    first = _page(session, storage, campaign, source, [_text("1", "one"), _text("2", "two")])
    results = _page(
        session,
        storage,
        campaign,
        source,
        [_text("2", "two, edited"), _text("3", "three"), _text("1", "one")],
    )
    assert [r.created for r in results] == [False, True, False]
    assert results[0].submission.id == first[1].submission.id
    assert results[2].submission.id == first[0].submission.id
    session.expire_all()
    texts = sorted(s.text for s in session.exec(select(Submission)).all())
    assert texts == ["one", "three", "two, edited"]
    assert _count(session, AuditEntry) == 3  # one per stored item, none for a re-seen one


def test_page_that_fails_midway_leaves_nothing_and_its_rerun_stores_each_item_once(
    settings: Settings, session: Session
) -> None:
    campaign = make_campaign(session)
    source = make_source(session, campaign, cursor={"after": "0"})
    page = [
        _text("1", "one"),
        _incoming(jpeg_bytes(), external_id="2", text="two"),
        _text("3", "three"),
        _incoming(jpeg_bytes(color=(200, 10, 10)), external_id="4", text="four"),
    ]
    # Slide and thumb of item 2 fit, the disk fills on item 4: the rows of 1–3 are written.
    full = DiskFullAfter(settings.effective_media_dir, budget=3)
    with pytest.raises(OSError, match="No space left"):
        _page(session, full, campaign, source, page)
    session.rollback()
    session.expire_all()
    assert _count(session, Submission) == 0 and _count(session, AuditEntry) == 0
    assert session.exec(select(MediaAsset)).all() == []
    assert session.get(Source, source.id).cursor == {"after": "0"}  # type: ignore[union-attr]

    storage = LocalStorage(settings.effective_media_dir)
    rerun = _page(session, storage, campaign, source, page)
    again = _page(session, storage, campaign, source, page)
    assert [r.created for r in rerun] == [True] * 4
    assert [r.created for r in again] == [False] * 4
    assert [r.submission.id for r in again] == [r.submission.id for r in rerun]
    session.expire_all()
    assert _count(session, Submission) == 4 and _count(session, AuditEntry) == 4
    assert len(session.exec(select(MediaAsset)).all()) == 2
    assert session.get(Source, source.id).cursor == {"after": "4"}  # type: ignore[union-attr]
    images = {e.submission_id: e.detail["images"] for e in _audits(session).values()}
    assert sorted(images.values()) == [0, 0, 1, 1]


def test_flags_of_an_item_with_images_keep_their_order_and_reach_the_audit(
    settings: Settings, session: Session
) -> None:
    storage, campaign, source = _collecting(settings, session)
    photo = jpeg_bytes(900, 700, (150, 60, 40))
    _page(session, storage, campaign, source, [_incoming(photo, external_id="x")])
    add_rule(session=session, campaign=campaign, kind=RuleKind.blocked_word, value="фейк")
    # The rule added between two pages applies to the next one; the same photo again is
    # a near duplicate of the stored one (flagged, not dropped).
    [copy] = _page(
        session,
        storage,
        campaign,
        source,
        [_incoming(photo, external_id="y", text="фейк", sensitive=True)],
    )
    assert copy.created
    session.expire_all()
    stored = session.get(Submission, copy.submission.id)
    assert stored is not None
    assert stored.flags == ["sensitive", "near_duplicate", "rule:фейк"]
    entry = _audits(session)[int(stored.id or 0)]
    assert entry.reason == "sensitive, near_duplicate, rule:фейк"
    assert entry.detail == {"origin": "collected", "images": 1}


def test_page_flags_blocked_phrases_exactly_where_contains_phrase_finds_them(
    settings: Settings, session: Session
) -> None:
    storage, campaign, source = _collecting(settings, session)
    phrases = [  # as stored: add_rule normalises "ﬁre" to "fire"
        add_rule(session=session, campaign=campaign, kind=RuleKind.blocked_word, value=v).value
        for v in ["Мы НЕ помним", "фейк", "ﬁre", "Өтірік"]
    ]
    texts = [
        "мы  не\nпомним",
        "мыне помним",
        "Это ФЕЙК!",
        "фейковый",
        "ＦＩＲＥ!",
        "fire-fighters",
        "firework",
        "бұл өтірік",
        "",
    ]
    results = _page(
        session,
        storage,
        campaign,
        source,
        [_text(str(n), text) for n, text in enumerate(texts)],
    )
    for text, result in zip(texts, results, strict=True):
        expected = [f"rule:{p}" for p in phrases if contains_phrase(f"{text} Aigerim ", p)]
        assert result.submission.flags == expected, text
    assert sum(bool(r.submission.flags) for r in results) == 5
