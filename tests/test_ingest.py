"""The one ingest path: idempotence, duplicate flags, rules, receipts."""

from __future__ import annotations

from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.media import process_image
from aggregator.media.storage import LocalStorage
from aggregator.models import MediaAsset, ModerationMode, Origin, Rule, RuleKind, Submission
from aggregator.models import SubmissionStatus as S
from aggregator.services.ingest import Incoming, IncomingImage, ingest
from aggregator.services.users import hash_token
from tests.factories import jpeg_bytes, make_campaign, make_source


def _incoming(image_bytes: bytes, **kw: object) -> Incoming:
    values: dict[str, object] = {"origin": Origin.collected, "author_name": "Aigerim", **kw}
    return Incoming(images=[IncomingImage(process_image(image_bytes), "a sign")], **values)  # type: ignore[arg-type]


def test_same_external_id_is_stored_once(settings: Settings, session: Session) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    source = make_source(session, campaign)
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
