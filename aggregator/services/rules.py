"""Moderation rules applied when an item arrives: trusted authors may be approved at once,
blocked authors, instances and words hold an item back with a flag moderators see."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from aggregator.errors import InvalidInput, NotFound
from aggregator.models import (
    Campaign,
    ModerationMode,
    Rule,
    RuleKind,
    Source,
    SubmissionStatus,
)
from aggregator.services.audit import audit


def fold(text: str) -> str:
    """Case-fold and NFKC-normalise, so ﬁ/fi, Ё/ё and full-width letters compare equal."""
    return unicodedata.normalize("NFKC", text).casefold()


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    """The whole-word pattern for ``phrase`` matched against folded text (None: empty)."""
    needle = fold(phrase).strip()
    if not needle:
        return None
    return re.compile(
        r"(?<!\w)" + r"\s+".join(re.escape(part) for part in needle.split()) + r"(?!\w)"
    )


def contains_phrase(text: str, phrase: str) -> bool:
    """True when ``phrase`` occurs in ``text`` as whole words, in any script.

    Python's ``\\w`` is Unicode-aware, so boundaries work for Cyrillic, Kazakh and Hebrew
    (an ASCII-only ``\\b`` is the mistake this avoids).
    """
    pattern = _phrase_pattern(phrase)
    return pattern is not None and pattern.search(fold(text)) is not None


class Judged(Protocol):
    """What the rules look at in an item (a Submission, or an item about to become one)."""

    @property
    def text(self) -> str: ...
    @property
    def author_name(self) -> str: ...
    @property
    def author_handle(self) -> str | None: ...
    @property
    def author_url(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def content_warning(self) -> str | None: ...
    @property
    def sensitive(self) -> bool: ...


def _author_keys(item: Judged) -> set[str]:
    keys = {fold(item.author_name)} if item.author_name else set()
    if item.author_handle:
        keys.add(fold(item.author_handle.lstrip("@")))
    return keys


def _instance(item: Judged) -> str | None:
    for value in (item.author_url, item.url):
        if value:
            host = urlsplit(value).hostname
            if host:
                return host.lower()
    handle = item.author_handle or ""
    if handle.count("@") >= 1 and "." in handle.rsplit("@", 1)[-1]:
        return handle.rsplit("@", 1)[-1].lower()
    return None


@dataclass(frozen=True)
class _Check:
    kind: RuleKind
    value: str  # as the admin wrote it (shown in flags)
    folded: str  # folded, without a leading "@" (compared with authors and instances)
    pattern: re.Pattern[str] | None  # blocked words only
    # The phrase's first folded word: the pattern can only match where this occurs, and a
    # substring test is far cheaper than the regex, which most texts never need.
    first_word: str = ""


@dataclass(frozen=True)
class RuleSet:
    """A campaign's rules prepared once (values folded, phrases compiled), in rule order.

    Build it with ``compile_rules``; ``decide`` is then pure and cheap per item, which is what
    lets ingest apply the rules to a whole page without redoing that work for every item.
    """

    checks: tuple[_Check, ...]

    def decide(
        self, campaign: Campaign, source: Source | None, item: Judged
    ) -> tuple[SubmissionStatus, list[str]]:
        """The status a new item starts in and the rule flags it carries (in rule order).

        Blocked words, authors and instances flag the item (it waits for a moderator);
        a trusted author or source approves it at once, but only in an ``auto_trusted``
        campaign and only when nothing flagged it and it is not marked sensitive.
        """
        flags: list[str] = []
        authors = _author_keys(item)
        instance = _instance(item)
        searchable = fold(" ".join([item.text, item.author_name, item.content_warning or ""]))
        trusted = False
        for check in self.checks:
            kind, value = check.kind, check.folded
            if kind == RuleKind.blocked_word:
                if (
                    check.pattern is not None
                    and check.first_word in searchable
                    and check.pattern.search(searchable)
                ):
                    flags.append(f"rule:{check.value}")
            elif kind == RuleKind.blocked_author and value in authors:
                flags.append(f"blocked_author:{check.value}")
            elif (
                kind == RuleKind.blocked_instance
                and instance
                and (instance == value or instance.endswith("." + value))
            ):
                flags.append(f"blocked_instance:{check.value}")
            elif kind == RuleKind.trusted_author and value in authors:
                trusted = True
            elif (
                kind == RuleKind.trusted_source
                and source is not None
                and check.value == str(source.id)
            ):
                trusted = True
        if (
            campaign.moderation_mode == ModerationMode.auto_trusted
            and trusted
            and not flags
            and not item.sensitive
        ):
            return SubmissionStatus.approved, flags
        return SubmissionStatus.pending, flags


@functools.lru_cache(maxsize=64)
def _compiled(rules: tuple[tuple[str, str], ...]) -> RuleSet:
    # Keyed by the rules' content, so an edited rule can never be served from a stale entry.
    return RuleSet(
        tuple(
            _Check(
                kind=RuleKind(kind),
                value=value,
                folded=fold(value).lstrip("@"),
                pattern=_phrase_pattern(value) if kind == RuleKind.blocked_word else None,
                first_word=next(iter(fold(value).split()), ""),
            )
            for kind, value in rules
        )
    )


def compile_rules(rules: Sequence[Rule]) -> RuleSet:
    """``rules`` (one campaign's, in id order) ready to apply; cached by their content."""
    return _compiled(tuple((RuleKind(rule.kind).value, rule.value) for rule in rules))


def campaign_rules(session: Session, campaign: Campaign) -> RuleSet:
    """The campaign's current rules, compiled (one query; compiling is cached)."""
    rules = session.exec(
        select(Rule).where(Rule.campaign_id == campaign.id).order_by(col(Rule.id))
    ).all()
    return compile_rules(rules)


def initial_decision(
    *,
    session: Session,
    campaign: Campaign,
    source: Source | None,
    submission: Judged,
    rules: Sequence[Rule] | None = None,
) -> tuple[SubmissionStatus, list[str]]:
    """The status a new item starts in and the rule flags it carries (``rules``: preloaded)."""
    compiled = campaign_rules(session, campaign) if rules is None else compile_rules(rules)
    return compiled.decide(campaign, source, submission)


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
    audit(
        session,
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        detail={"campaign_id": campaign.id, "kind": kind.value, "value": value},
    )
