"""Moderation rules applied when an item arrives: trusted authors may be approved at once,
blocked authors, instances and words hold an item back with a flag moderators see."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlmodel import Session, select

from aggregator.errors import InvalidInput, NotFound
from aggregator.models import (
    AuditEntry,
    Campaign,
    ModerationMode,
    Rule,
    RuleKind,
    Source,
    Submission,
    SubmissionStatus,
)


def fold(text: str) -> str:
    """Case-fold and NFKC-normalise, so ﬁ/fi, Ё/ё and full-width letters compare equal."""
    return unicodedata.normalize("NFKC", text).casefold()


def contains_phrase(text: str, phrase: str) -> bool:
    """True when ``phrase`` occurs in ``text`` as whole words, in any script.

    Python's ``\\w`` is Unicode-aware, so boundaries work for Cyrillic, Kazakh and Hebrew
    (an ASCII-only ``\\b`` is the mistake this avoids).
    """
    needle = fold(phrase).strip()
    if not needle:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(part) for part in needle.split()) + r"(?!\w)"
    return re.search(pattern, fold(text)) is not None


def _author_keys(submission: Submission) -> set[str]:
    keys = {fold(submission.author_name)} if submission.author_name else set()
    if submission.author_handle:
        keys.add(fold(submission.author_handle.lstrip("@")))
    return keys


def _instance(submission: Submission) -> str | None:
    for value in (submission.author_url, submission.url):
        if value:
            host = urlsplit(value).hostname
            if host:
                return host.lower()
    handle = submission.author_handle or ""
    if handle.count("@") >= 1 and "." in handle.rsplit("@", 1)[-1]:
        return handle.rsplit("@", 1)[-1].lower()
    return None


def initial_decision(
    *,
    session: Session,
    campaign: Campaign,
    source: Source | None,
    submission: Submission,
    rules: Sequence[Rule] | None = None,
) -> tuple[SubmissionStatus, list[str]]:
    """The status a new item starts in and the rule flags it carries (``rules``: preloaded)."""
    if rules is None:
        rules = session.exec(select(Rule).where(Rule.campaign_id == campaign.id)).all()
    flags: list[str] = []
    authors = _author_keys(submission)
    instance = _instance(submission)
    searchable = " ".join(
        [submission.text, submission.author_name, submission.content_warning or ""]
    )
    trusted = False
    for rule in rules:
        value = fold(rule.value).lstrip("@")
        if rule.kind == RuleKind.blocked_word and contains_phrase(searchable, rule.value):
            flags.append(f"rule:{rule.value}")
        elif rule.kind == RuleKind.blocked_author and value in authors:
            flags.append(f"blocked_author:{rule.value}")
        elif (
            rule.kind == RuleKind.blocked_instance
            and instance
            and (instance == value or instance.endswith("." + value))
        ):
            flags.append(f"blocked_instance:{rule.value}")
        elif rule.kind == RuleKind.trusted_author and value in authors:
            trusted = True
        elif (
            rule.kind == RuleKind.trusted_source
            and source is not None
            and rule.value == str(source.id)
        ):
            trusted = True
    if (
        campaign.moderation_mode == ModerationMode.auto_trusted
        and trusted
        and not flags
        and not submission.sensitive
    ):
        return SubmissionStatus.approved, flags
    return SubmissionStatus.pending, flags


# -- rule administration ---------------------------------------------------------------------

MAX_RULE_VALUE = 500
RULE_LABELS = {
    RuleKind.trusted_author: "Trusted authors",
    RuleKind.trusted_source: "Trusted sources",
    RuleKind.blocked_author: "Blocked authors",
    RuleKind.blocked_instance: "Blocked servers",
    RuleKind.blocked_word: "Blocked words and phrases",
}


def list_rules(*, session: Session, campaign_id: int) -> list[Rule]:
    """A campaign's rules, grouped by kind in a stable order."""
    return list(
        session.exec(
            select(Rule).where(Rule.campaign_id == campaign_id).order_by(Rule.kind, Rule.id)  # type: ignore[arg-type]
        ).all()
    )


def clean_rule_value(kind: RuleKind, value: str, *, session: Session, campaign: Campaign) -> str:
    """Normalise one rule value or raise InvalidInput naming the problem."""
    value = unicodedata.normalize("NFKC", value).strip()
    if kind in (RuleKind.trusted_author, RuleKind.blocked_author):
        value = value.lstrip("@")
    if kind == RuleKind.blocked_instance:
        value = value.lower().removeprefix("https://").removeprefix("http://").strip("/")
        if not re.fullmatch(r"[a-z0-9.-]+\.[a-z0-9-]{2,}", value):
            raise InvalidInput("Write a server name such as example.social.", field=kind.value)
    if not value:
        raise InvalidInput("A rule needs a value.", field=kind.value)
    if len(value) > MAX_RULE_VALUE:
        raise InvalidInput("This text is too long.", field=kind.value)
    if kind == RuleKind.trusted_source:
        source = session.get(Source, int(value)) if value.isdigit() else None
        if source is None or source.campaign_id != campaign.id:
            raise InvalidInput("Use the numbers of this campaign's sources.", field=kind.value)
    return value


def add_rule(
    *,
    session: Session,
    campaign: Campaign,
    kind: RuleKind | str,
    value: str,
    actor_id: int | None = None,
    actor_label: str = "",
) -> Rule:
    """Add one rule (validated, deduplicated case-insensitively) and audit it."""
    try:
        kind = RuleKind(kind)
    except ValueError as exc:
        raise InvalidInput(f"Unknown rule kind {kind!r}.", field="kind") from exc
    value = clean_rule_value(kind, value, session=session, campaign=campaign)
    for existing in list_rules(session=session, campaign_id=int(campaign.id or 0)):
        if existing.kind == kind and fold(existing.value) == fold(value):
            raise InvalidInput("This rule exists already.", field=kind.value)
    rule = Rule(campaign_id=campaign.id, kind=kind, value=value)  # type: ignore[arg-type]
    session.add(rule)
    _audit_rule(session, "rule.add", campaign, kind, value, actor_id, actor_label)
    session.commit()
    session.refresh(rule)
    return rule


def delete_rule(
    *,
    session: Session,
    campaign: Campaign,
    rule_id: int,
    actor_id: int | None = None,
    actor_label: str = "",
) -> None:
    """Delete one of the campaign's rules (NotFound for another campaign's rule)."""
    rule = session.get(Rule, rule_id)
    if rule is None or rule.campaign_id != campaign.id:
        raise NotFound("There is no such rule.")
    session.delete(rule)
    _audit_rule(
        session, "rule.delete", campaign, RuleKind(rule.kind), rule.value, actor_id, actor_label
    )
    session.commit()


def replace_rules(
    *,
    session: Session,
    campaign: Campaign,
    kind: RuleKind,
    values: list[str],
    actor_id: int | None = None,
    actor_label: str = "",
) -> list[Rule]:
    """Make the campaign's rules of ``kind`` exactly ``values`` (one form field per kind).

    Every value is validated first, so a bad line changes nothing.
    """
    wanted: dict[str, str] = {}
    for raw in values:
        if raw.strip():
            value = clean_rule_value(kind, raw, session=session, campaign=campaign)
            wanted.setdefault(fold(value), value)
    current = [
        r for r in list_rules(session=session, campaign_id=int(campaign.id or 0)) if r.kind == kind
    ]
    have = {fold(r.value): r for r in current}
    for key, rule in have.items():
        if key not in wanted:
            session.delete(rule)
            _audit_rule(session, "rule.delete", campaign, kind, rule.value, actor_id, actor_label)
    for key, value in wanted.items():
        if key not in have:
            session.add(Rule(campaign_id=campaign.id, kind=kind, value=value))  # type: ignore[arg-type]
            _audit_rule(session, "rule.add", campaign, kind, value, actor_id, actor_label)
    session.commit()
    return [
        r for r in list_rules(session=session, campaign_id=int(campaign.id or 0)) if r.kind == kind
    ]


def _audit_rule(
    session: Session,
    action: str,
    campaign: Campaign,
    kind: RuleKind,
    value: str,
    actor_id: int | None,
    actor_label: str,
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor_id,
            actor_label=actor_label[:100],
            action=action,
            detail={"campaign_id": campaign.id, "kind": kind.value, "value": value},
        )
    )
