"""Administration: the dashboard (moderators and admins) and campaigns (admins).

Sources and users live in admin_sources.py and admin_users.py; event pages under
``/admin/events`` belong to the slideshow area.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.config import LANGUAGE_CODES
from aggregator.deps import SessionDep
from aggregator.errors import InvalidInput, NotFound
from aggregator.media.storage import PRIVATE_CACHE
from aggregator.models import CONSENT_SCOPES, AuditEntry, Campaign, ModerationMode, RuleKind, User
from aggregator.services import dashboard
from aggregator.services.campaign_admin import CampaignForm, parse_campaign_form, save_campaign
from aggregator.services.campaigns import DEFAULT_CONSENT
from aggregator.services.rules import RULE_LABELS, list_rules
from aggregator.web.auth import AdminUser, ModeratorUser
from aggregator.web.csrf import require_csrf_form
from aggregator.web.routes.api_moderation import actor_label
from aggregator.web.templating import gettext, render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]
NO_STORE = {"Cache-Control": PRIVATE_CACHE}


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (files are not expected on admin pages)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormData = Annotated[dict[str, str], Depends(form_data)]


def translate_errors(request: Request, errors: dict[str, str]) -> dict[str, str]:
    """Field messages in the page's language."""
    return {key: gettext(request, message) for key, message in errors.items()}


@router.get("/admin", name="admin_dashboard")
def admin_dashboard(request: Request, session: SessionDep, user: ModeratorUser) -> Response:
    """Submissions per day, per source and status, the queue's age and source health."""
    days = dashboard.per_day(session)
    recent = session.exec(
        select(AuditEntry, User)
        .join(User, col(User.id) == col(AuditEntry.actor_id), isouter=True)
        .order_by(col(AuditEntry.id).desc())
        .limit(15)
    ).all()
    return render(
        request,
        "admin/dashboard.html",
        {
            "section": "dashboard",
            "chart": dashboard.chart(days),
            "total_days": sum(d.count for d in days),
            "table": dashboard.by_source_and_status(session),
            "statuses": ["pending", "approved", "rejected", "removed", "withdrawn"],
            "pending": dashboard.pending(session),
            "health": dashboard.source_health(session),
            "recent": recent,
        },
        headers=NO_STORE,
    )


@router.get("/admin/campaigns", name="admin_campaigns")
def campaigns_list(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """Every campaign with links to edit it, its sources and its QR poster."""
    campaigns = session.exec(select(Campaign).order_by(col(Campaign.created_at).desc())).all()
    return render(
        request,
        "admin/campaigns.html",
        {"section": "campaigns", "campaigns": campaigns},
        headers=NO_STORE,
    )


def _form_context(
    session: Session, campaign: Campaign | None, form: CampaignForm | None
) -> dict[str, Any]:
    """What the campaign form shows: current values (or the submitted ones) and errors."""
    if form is not None:
        values = dict(form.values)
        values["rules"] = {k.value: v for k, v in values.get("rules", {}).items()}
    elif campaign is not None:
        rules = list_rules(session=session, campaign_id=int(campaign.id or 0))
        values = {
            "slug": campaign.slug,
            "name": campaign.name,
            "description": campaign.description,
            "sign_text": campaign.sign_text,
            "hashtags": campaign.hashtags,
            "languages": campaign.languages,
            "consent_texts": campaign.consent_texts,
            "translations": campaign.translations,
            "upload_opens_at": campaign.upload_opens_at,
            "upload_closes_at": campaign.upload_closes_at,
            "moderation_mode": campaign.moderation_mode,
            "require_second_approval": campaign.require_second_approval,
            "rules": {
                kind.value: "\n".join(r.value for r in rules if r.kind == kind) for kind in RuleKind
            },
        }
    else:
        values = {
            "slug": "",
            "name": "",
            "description": "",
            "sign_text": "We Remember",
            "hashtags": ["weremember"],
            "languages": ["en", "ru", "kk"],
            "consent_texts": {},
            "translations": {},
            "upload_opens_at": None,
            "upload_closes_at": None,
            "moderation_mode": ModerationMode.manual,
            "require_second_approval": False,
            "rules": {kind.value: "" for kind in RuleKind},
        }
    return {
        "section": "campaigns",
        "campaign": campaign,
        "values": values,
        "language_codes": LANGUAGE_CODES,
        "scopes": CONSENT_SCOPES,
        "default_consent": DEFAULT_CONSENT,
        "rule_kinds": [(kind.value, RULE_LABELS[kind]) for kind in RuleKind],
        "modes": [m.value for m in ModerationMode],
    }


@router.get("/admin/campaigns/new", name="admin_campaign_new")
def campaign_new(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """An empty campaign form."""
    context = _form_context(session, None, None)
    return render(request, "admin/campaign_form.html", {**context, "errors": {}}, headers=NO_STORE)


@router.get("/admin/campaigns/{campaign_id}", name="admin_campaign")
def campaign_edit(
    request: Request, session: SessionDep, user: AdminUser, campaign_id: int
) -> Response:
    """The campaign form filled with the campaign's values."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("There is no such campaign.")
    context = _form_context(session, campaign, None)
    return render(request, "admin/campaign_form.html", {**context, "errors": {}}, headers=NO_STORE)


def _save(
    request: Request,
    session: Session,
    user: User,
    campaign: Campaign | None,
    data: dict[str, str],
) -> Response:
    form = parse_campaign_form(data, creating=campaign is None)
    if not form.errors:
        try:
            saved = save_campaign(
                session=session,
                campaign=campaign,
                form=form,
                actor_id=user.id,
                actor_label=actor_label(user),
            )
        except InvalidInput as exc:
            form.errors[exc.field or "name"] = exc.message
        else:
            return RedirectResponse(f"/admin/campaigns/{saved.id}?saved=1", status_code=303)
    session.rollback()
    context = _form_context(session, campaign, form)
    return render(
        request,
        "admin/campaign_form.html",
        {**context, "errors": translate_errors(request, form.errors)},
        status_code=422,
        headers=NO_STORE,
    )


@router.post("/admin/campaigns/new", name="admin_campaign_create")
def campaign_create(
    request: Request, session: SessionDep, user: AdminUser, _csrf: CsrfChecked, data: FormData
) -> Response:
    """Create a campaign; the form comes back with messages when something is wrong."""
    return _save(request, session, user, None, data)


@router.post("/admin/campaigns/{campaign_id}", name="admin_campaign_update")
def campaign_update(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    _csrf: CsrfChecked,
    data: FormData,
    campaign_id: int,
) -> Response:
    """Save a campaign's texts, window, moderation mode and rules."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("There is no such campaign.")
    return _save(request, session, user, campaign, data)
