"""Moderation rules applied when an item arrives: trusted authors may be approved at once,
blocked authors, instances and words hold an item back with a flag moderators see."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from sqlmodel import Session, select

from aggregator.models import (
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
    *, session: Session, campaign: Campaign, source: Source | None, submission: Submission
) -> tuple[SubmissionStatus, list[str]]:
    """The status a new item starts in and the rule flags it carries."""
    rules = session.exec(select(Rule).where(Rule.campaign_id == campaign.id)).all()
    flags: list[str] = []
    authors = _author_keys(submission)
    instance = _instance(submission)
    searchable = " ".join([submission.text, submission.author_name, submission.content_warning or ""])
    trusted = False
    for rule in rules:
        value = fold(rule.value).lstrip("@")
        if rule.kind == RuleKind.blocked_word and contains_phrase(searchable, rule.value):
            flags.append(f"rule:{rule.value}")
        elif rule.kind == RuleKind.blocked_author and value in authors:
            flags.append(f"blocked_author:{rule.value}")
        elif rule.kind == RuleKind.blocked_instance and instance and (
            instance == value or instance.endswith("." + value)
        ):
            flags.append(f"blocked_instance:{rule.value}")
        elif rule.kind == RuleKind.trusted_author and value in authors:
            trusted = True
        elif rule.kind == RuleKind.trusted_source and source is not None and rule.value == str(source.id):
            trusted = True
    if (
        campaign.moderation_mode == ModerationMode.auto_trusted
        and trusted
        and not flags
        and not submission.sensitive
    ):
        return SubmissionStatus.approved, flags
    return SubmissionStatus.pending, flags
