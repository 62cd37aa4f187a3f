"""Editing campaigns from the admin pages: every field validated at once, so the form can
show each message next to its field, and every change audited."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from aggregator.config import LANGUAGE_CODES
from aggregator.errors import InvalidInput
from aggregator.models import (
    CONSENT_SCOPES,
    Campaign,
    ModerationMode,
    RuleKind,
)
from aggregator.services.audit import audit
from aggregator.services.campaigns import SLUG_RE, normalize_hashtag
from aggregator.services.rules import clean_rule_value, replace_rules

TEXT_FIELDS = ("name", "description", "sign_text")
# Messages are plain constants so the pages can translate them (listed in routes/admin.py).
TOO_LONG = "This text is too long."
BAD_TAG = "Hashtags may use letters, digits and _ only, separated by spaces."
MAX_LENGTHS = {"name": 200, "description": 5000, "sign_text": 200, "consent": 1000}


@dataclass
class CampaignForm:
    """Parsed form values and per-field error messages (empty when valid)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def parse_when(value: str, field_name: str, errors: dict[str, str]) -> datetime | None:
    """A ``datetime-local`` value read as UTC; an error message when unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors[field_name] = "Use the form YYYY-MM-DD HH:MM."
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def split_tags(raw: str) -> list[str]:
    """Hashtags typed with spaces, commas or new lines between them."""
    return [t for t in re.split(r"[\s,]+", raw) if t]


def parse_campaign_form(form: dict[str, str], *, creating: bool) -> CampaignForm:
    """Read the campaign form; errors are keyed by field name."""
    result = CampaignForm()
    values, errors = result.values, result.errors
    if creating:
        slug = form.get("slug", "").strip()
        if not SLUG_RE.match(slug):
            errors["slug"] = "Use lower-case letters, digits and dashes (up to 63)."
        values["slug"] = slug
    for name in TEXT_FIELDS:
        values[name] = form.get(name, "").strip()
        if len(values[name]) > MAX_LENGTHS[name]:
            errors[name] = TOO_LONG
    if not values["name"]:
        errors["name"] = "The campaign needs a name."
    if not values["sign_text"]:
        values["sign_text"] = "We Remember"
    tags = []
    for tag in split_tags(form.get("hashtags", "")):
        try:
            tags.append(normalize_hashtag(tag))
        except InvalidInput:
            errors["hashtags"] = BAD_TAG
    if not tags and "hashtags" not in errors:
        errors["hashtags"] = "Give at least one hashtag."
    values["hashtags"] = list(dict.fromkeys(tags))
    languages = [code for code in LANGUAGE_CODES if form.get(f"language_{code}")]
    if not languages:
        errors["languages"] = "Choose at least one language."
    values["languages"] = languages
    values["consent_texts"] = {}
    for scope in CONSENT_SCOPES:
        text = form.get(f"consent_{scope}", "").strip()
        if len(text) > MAX_LENGTHS["consent"]:
            errors[f"consent_{scope}"] = TOO_LONG
        if text:
            values["consent_texts"][scope] = text
    translations: dict[str, Any] = {}
    for code in LANGUAGE_CODES:
        own: dict[str, Any] = {}
        for name in TEXT_FIELDS:
            text = form.get(f"t_{code}_{name}", "").strip()
            if len(text) > MAX_LENGTHS[name]:
                errors[f"t_{code}_{name}"] = TOO_LONG
            if text:
                own[name] = text
        consent = {}
        for scope in CONSENT_SCOPES:
            text = form.get(f"t_{code}_consent_{scope}", "").strip()
            if len(text) > MAX_LENGTHS["consent"]:
                errors[f"t_{code}_consent_{scope}"] = TOO_LONG
            if text:
                consent[scope] = text
        if consent:
            own["consent"] = consent
        if own:
            translations[code] = own
    values["translations"] = translations
    values["upload_opens_at"] = parse_when(
        form.get("upload_opens_at", ""), "upload_opens_at", errors
    )
    values["upload_closes_at"] = parse_when(
        form.get("upload_closes_at", ""), "upload_closes_at", errors
    )
    opens, closes = values["upload_opens_at"], values["upload_closes_at"]
    if opens and closes and closes <= opens:
        errors["upload_closes_at"] = "Uploads must close after they open."
    try:
        values["moderation_mode"] = ModerationMode(form.get("moderation_mode", "manual"))
    except ValueError:
        errors["moderation_mode"] = "Choose a moderation mode."
    values["require_second_approval"] = bool(form.get("require_second_approval"))
    values["rules"] = {kind: form.get(f"rules_{kind.value}", "") for kind in RuleKind}
    return result


def save_campaign(
    *,
    session: Session,
    campaign: Campaign | None,
    form: CampaignForm,
    actor_id: int | None,
    actor_label: str,
) -> Campaign:
    """Create (``campaign`` None) or update a campaign from a valid form, with its rules.

    Raises InvalidInput (with ``field``) for problems only the database can see.
    """
    values = dict(form.values)
    rules: dict[RuleKind, str] = values.pop("rules")
    creating = campaign is None
    # Check every rule line first: a bad line must leave the campaign unchanged.
    probe = campaign or Campaign(slug=values["slug"], name=values["name"])
    for kind, raw in rules.items():
        for line in raw.splitlines():
            if line.strip():
                try:
                    clean_rule_value(kind, line, session=session, campaign=probe)
                except InvalidInput as exc:
                    raise InvalidInput(exc.message, field=f"rules_{kind.value}") from exc
    if creating:
        if session.exec(select(Campaign).where(Campaign.slug == values["slug"])).first():
            raise InvalidInput("A campaign with this short name exists.", field="slug")
        campaign = Campaign(**values)
    else:
        assert campaign is not None
        for key, value in values.items():
            setattr(campaign, key, value)
    session.add(campaign)
    session.flush()
    audit(
        session,
        actor_id=actor_id,
        actor_label=actor_label,
        action="campaign.create" if creating else "campaign.update",
        detail={"campaign_id": campaign.id, "slug": campaign.slug},
    )
    for kind, raw in rules.items():
        replace_rules(
            session=session,
            campaign=campaign,
            kind=kind,
            values=raw.splitlines(),
            actor_id=actor_id,
            actor_label=actor_label,
        )
    session.commit()
    session.refresh(campaign)
    return campaign
