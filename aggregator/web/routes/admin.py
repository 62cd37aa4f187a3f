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
from aggregator.i18n import N_
from aggregator.media.storage import PRIVATE_CACHE
from aggregator.models import CONSENT_SCOPES, AuditEntry, Campaign, ModerationMode, RuleKind, User
from aggregator.services import dashboard
from aggregator.services.campaign_admin import CampaignForm, parse_campaign_form, save_campaign
from aggregator.services.campaigns import DEFAULT_CONSENT
from aggregator.services.rules import RULE_LABELS, list_rules
from aggregator.web.auth import AdminUser, ModeratorUser
from aggregator.web.csrf import require_csrf_form
from aggregator.web.routes.api_moderation import DbId, actor_label
from aggregator.web.templating import gettext, render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]
NO_STORE = {"Cache-Control": PRIVATE_CACHE}


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (files are not expected on admin pages)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormData = Annotated[dict[str, str], Depends(form_data)]


# Validation messages raised by services (plain English constants there), listed here so the
# moderation catalog carries their translations; translate_errors() looks them up.
MESSAGES = (
    N_("Use the form YYYY-MM-DD HH:MM."),
    N_("Use lower-case letters, digits and dashes (up to 63)."),
    N_("This text is too long."),
    N_("The campaign needs a name."),
    N_("Hashtags may use letters, digits and _ only, separated by spaces."),
    N_("Give at least one hashtag."),
    N_("Choose at least one language."),
    N_("Uploads must close after they open."),
    N_("Choose a moderation mode."),
    N_("A campaign with this short name exists."),
    N_("Write a server name such as example.social."),
    N_("A rule needs a value."),
    N_("Use the numbers of this campaign's sources."),
    N_("This rule exists already."),
    N_("The interval must be between 30 s and one day."),
    N_("Choose a campaign."),
    N_("Choose a kind of source."),
    N_("This kind of source needs a URL."),
    N_("The URL must start with http:// or https://."),
    N_("A Telegram bot needs its token."),
    N_("Choose a role."),
    N_("This is not an e-mail address."),
    N_("There is an account for this address already."),
    N_("You cannot change your own role."),
    N_("You cannot deactivate your own account."),
    N_("You cannot send yourself a new invitation link."),
    N_("Your account may not open this page."),
    N_("Only administrators may open this page."),
    N_("Please log in."),
    N_("There is no such campaign."),
    N_("There is no such source."),
    N_("There is no such account."),
    N_("There is no such item."),
    N_("Another moderator is looking at this item right now."),
    N_("This flagged item needs the approval of a second moderator."),
    N_("Select at least one item."),
    N_("Filters take whole numbers."),
    N_("The e-mail address or the password is not right."),
    N_("The e-mail address or password is too long."),
    N_("Please use at most 200 characters."),
    N_("The password needs between 10 and 1024 characters."),
    N_("The two passwords are not the same."),
    N_("This invitation does not exist or has expired. Ask for a new one."),
    N_("Too many attempts. Please wait a few minutes and try again."),
    N_("There is no such action."),
    N_("A rejected item cannot be pinned."),
    N_("This item has no image to rotate."),
    N_("Rotate by 90, 180 or 270 degrees."),
    N_("Select at most 500 items at once."),
    N_("The action must be approve or reject."),
)


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
    request: Request, session: SessionDep, user: AdminUser, campaign_id: DbId
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
    campaign_id: DbId,
) -> Response:
    """Save a campaign's texts, window, moderation mode and rules."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("There is no such campaign.")
    return _save(request, session, user, campaign, data)
