"""Moderation rules: Unicode-aware phrase matching (Cyrillic, Kazakh, Hebrew), the decision
a new item starts with, and rule administration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.errors import InvalidInput, NotFound
from aggregator.models import AuditEntry, ModerationMode, RuleKind, Submission, SubmissionStatus
from aggregator.services.rules import (
    add_rule,
    contains_phrase,
    delete_rule,
    fold,
    initial_decision,
    list_rules,
    replace_rules,
)
from tests.factories import make_campaign, make_source
from tests.moderation_support import fresh_session


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Reads see what the app committed (see tests/moderation_support.py)."""
    yield from fresh_session(settings)


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        # Russian: whole words only, any case, ё/Ё folded alike.
        ("Это ЛОЖЬ и провокация", "ложь", True),
        ("Опровержение лжи", "ложь", False),
        ("Надо было подЛОЖИТЬ", "ложь", False),
        ("Всё это выдумки!", "всё это", True),
        ("Всё   это", "всё это", True),  # any run of spaces between words
        ("ВСЁ ЭТО", "всё это", True),
        # Kazakh letters outside basic Cyrillic (ә, ғ, қ, ң, ө, ұ, ү, һ, і).
        ("Бұл өтірік сөз", "өтірік", True),
        ("Өтірікші адам", "өтірік", False),
        ("ҚАЗАҚСТАН тарихы", "қазақстан", True),
        ("Біз еске аламыз", "еске", True),
        ("тарихшылар", "тарих", False),
        # Hebrew: no case, prefixes glued to words are separate words only with a space.
        ("זה שקר גדול", "שקר", True),
        ("השקר הגדול", "שקר", False),
        ("שקר.", "שקר", True),
        # Mixed scripts and punctuation as boundaries.
        ("#ложь", "ложь", True),
        ("«ложь»", "ложь", True),
        ("ложь2", "ложь", False),
        # NFKC: full-width Latin and ligatures compare equal.
        ("ｈｏａｘ", "hoax", True),
        ("ﬁne", "fine", True),
        ("anything", "   ", False),
    ],
)
def test_contains_phrase(text: str, phrase: str, expected: bool) -> None:
    assert contains_phrase(text, phrase) is expected


def test_fold_is_case_and_compatibility_insensitive() -> None:
    assert fold("МЫ ПОМНИМ") == fold("мы помним")
    assert fold("Straße") == fold("STRASSE")


def _new(session: Session, campaign_id: int, **kw: object) -> Submission:
    values: dict[str, object] = {"campaign_id": campaign_id, "text": "", "author_name": "", **kw}
    return Submission(**values)  # type: ignore[arg-type]


def test_initial_decision_flags_and_trust(session: Session) -> None:
    campaign = make_campaign(session, moderation_mode=ModerationMode.auto_trusted)
    source = make_source(session, campaign)
    add_rule(session=session, campaign=campaign, kind=RuleKind.blocked_word, value="Өтірік")
    add_rule(session=session, campaign=campaign, kind=RuleKind.blocked_author, value="@troll")
    add_rule(
        session=session, campaign=campaign, kind=RuleKind.blocked_instance, value="spam.example"
    )
    add_rule(
        session=session, campaign=campaign, kind=RuleKind.trusted_author, value="@museum@alzhir.kz"
    )
    add_rule(session=session, campaign=campaign, kind=RuleKind.trusted_source, value=str(source.id))

    def decide(**kw: object) -> tuple[SubmissionStatus, list[str]]:
        chosen = kw.pop("source", None)
        sub = _new(session, int(campaign.id or 0), **kw)
        return initial_decision(
            session=session,
            campaign=campaign,
            source=chosen,  # type: ignore[arg-type]
            submission=sub,
        )

    assert decide(author_handle="museum@alzhir.kz") == (SubmissionStatus.approved, [])
    assert decide(source=source) == (SubmissionStatus.approved, [])
    status, flags = decide(author_handle="museum@alzhir.kz", text="бұл ӨТІРІК")
    assert status == SubmissionStatus.pending and flags == ["rule:Өтірік"]
    assert decide(author_handle="@Troll")[1] == ["blocked_author:troll"]
    assert decide(author_url="https://mastodon.spam.example/@x")[1] == [
        "blocked_instance:spam.example"
    ]
    # A sensitive item from a trusted author still waits for a person.
    assert decide(author_handle="museum@alzhir.kz", sensitive=True)[0] == SubmissionStatus.pending
    manual = make_campaign(session)
    sub = _new(session, int(manual.id or 0), author_handle="museum@alzhir.kz")
    assert initial_decision(session=session, campaign=manual, source=None, submission=sub)[0] == (
        SubmissionStatus.pending
    )


def test_rule_administration(session: Session) -> None:
    campaign = make_campaign(session)
    other = make_campaign(session)
    rule = add_rule(session=session, campaign=campaign, kind="blocked_word", value=" Мы НЕ помним ")
    assert rule.value == "Мы НЕ помним"
    with pytest.raises(InvalidInput):
        add_rule(session=session, campaign=campaign, kind="blocked_word", value="мы не ПОМНИМ")
    with pytest.raises(InvalidInput):
        add_rule(session=session, campaign=campaign, kind="blocked_word", value="   ")
    with pytest.raises(InvalidInput):
        add_rule(session=session, campaign=campaign, kind="nonsense", value="x")
    with pytest.raises(InvalidInput):
        add_rule(session=session, campaign=campaign, kind="blocked_instance", value="not a host")
    foreign = make_source(session, other)
    with pytest.raises(InvalidInput):
        add_rule(session=session, campaign=campaign, kind="trusted_source", value=str(foreign.id))
    with pytest.raises(NotFound):
        delete_rule(session=session, campaign=other, rule_id=int(rule.id or 0))
    kept = replace_rules(
        session=session,
        campaign=campaign,
        kind=RuleKind.blocked_word,
        values=["мы не помним", "жалған", "", "שקר"],
    )
    assert sorted(r.value for r in kept) == sorted(["Мы НЕ помним", "жалған", "שקר"])
    with pytest.raises(InvalidInput):
        replace_rules(
            session=session, campaign=campaign, kind=RuleKind.blocked_instance, values=["a b"]
        )
    delete_rule(session=session, campaign=campaign, rule_id=int(rule.id or 0))
    assert len(list_rules(session=session, campaign_id=int(campaign.id or 0))) == 2
    actions = [e.action for e in session.exec(select(AuditEntry))]
    assert actions.count("rule.add") == 3 and actions.count("rule.delete") == 1
