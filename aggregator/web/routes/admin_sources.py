"""Administration of sources: add, edit, pause and resume, see health, and collect now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlmodel import Session, col, select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aggregator.deps import SessionDep
from aggregator.errors import InvalidInput, NotFound
from aggregator.models import Campaign, Source, User
from aggregator.services.audit import audit
from aggregator.services.campaign_admin import BAD_TAG, split_tags
from aggregator.services.campaigns import SOURCE_KINDS, create_source, normalize_hashtag
from aggregator.services.dashboard import source_health
from aggregator.web.auth import AdminUser
from aggregator.web.csrf import require_csrf_form
from aggregator.web.routes.admin import NO_STORE, FormData, translate_errors
from aggregator.web.routes.api_moderation import DbId, actor_label
from aggregator.web.templating import render

router = APIRouter(include_in_schema=False)
CsrfChecked = Annotated[None, Depends(require_csrf_form)]
# Secrets are never sent back to the browser; an empty field keeps the stored value.
SECRET_KEYS = ("token", "app_password")
PLAIN_KEYS = ("url", "handle")


def _audit(session: Session, user: User, action: str, source: Source, **detail: Any) -> None:
    audit(
        session,
        actor_id=user.id,
        actor_label=actor_label(user),
        action=action,
        detail={"source_id": source.id, "campaign_id": source.campaign_id, **detail},
    )


@router.get("/admin/sources", name="admin_sources")
def sources_list(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """Every source with its health and last error."""
    campaigns = {c.id: c for c in session.exec(select(Campaign)).all()}
    return render(
        request,
        "admin/sources.html",
        {
            "section": "sources",
            "health": source_health(session),
            "campaigns": campaigns,
            "started": request.query_params.get("collecting"),
        },
        headers=NO_STORE,
    )


def _form_page(
    request: Request,
    session: Session,
    source: Source | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    campaigns = session.exec(select(Campaign).order_by(col(Campaign.name))).all()
    return render(
        request,
        "admin/source_form.html",
        {
            "section": "sources",
            "source": source,
            "values": values,
            "errors": translate_errors(request, errors),
            "campaigns": campaigns,
            "kinds": SOURCE_KINDS,
        },
        status_code=status_code,
        headers=NO_STORE,
    )


def _values_of(source: Source) -> dict[str, Any]:
    config = source.config or {}
    return {
        "campaign_id": source.campaign_id,
        "kind": source.kind,
        "name": source.name,
        "interval": source.interval_seconds,
        "hashtags": " ".join(config.get("hashtags") or []),
        **{key: config.get(key) or "" for key in PLAIN_KEYS},
        **{f"has_{key}": bool(config.get(key)) for key in SECRET_KEYS},
    }


def _parse(data: dict[str, str], errors: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Config and interval from the form (create_source checks per-kind requirements)."""
    config: dict[str, Any] = {
        key: data.get(key, "").strip()
        for key in (*PLAIN_KEYS, *SECRET_KEYS)
        if data.get(key, "").strip()
    }
    tags = []
    for tag in split_tags(data.get("hashtags", "")):
        try:
            tags.append(normalize_hashtag(tag))
        except InvalidInput:
            errors["hashtags"] = BAD_TAG
    if tags:
        config["hashtags"] = tags
    raw = data.get("interval", "300").strip()
    interval = int(raw) if raw.isdigit() else 0
    if not 30 <= interval <= 86400:
        errors["interval"] = "The interval must be between 30 s and one day."
    return config, interval


@router.get("/admin/sources/new", name="admin_source_new")
def source_new(request: Request, session: SessionDep, user: AdminUser) -> Response:
    """An empty source form."""
    campaign = request.query_params.get("campaign", "")
    values = {
        "kind": "mastodon",
        "interval": 300,
        "campaign_id": int(campaign) if campaign.isdigit() and len(campaign) < 10 else None,
    }
    return _form_page(request, session, None, values, {})


@router.post("/admin/sources/new", name="admin_source_create")
def source_create(
    request: Request, session: SessionDep, user: AdminUser, _csrf: CsrfChecked, data: FormData
) -> Response:
    """Add a source; the form returns with messages next to the fields when wrong."""
    errors: dict[str, str] = {}
    config, interval = _parse(data, errors)
    campaign_id = data.get("campaign_id", "")
    campaign = (
        session.get(Campaign, int(campaign_id))
        if campaign_id.isdigit() and len(campaign_id) < 10
        else None
    )
    if campaign is None:
        errors["campaign_id"] = "Choose a campaign."
    kind = data.get("kind", "")
    if kind not in SOURCE_KINDS:
        errors["kind"] = "Choose a kind of source."
    if kind in ("mastodon", "rss") and not config.get("url"):
        errors["url"] = "This kind of source needs a URL."
    elif config.get("url") and not str(config["url"]).startswith(("http://", "https://")):
        errors["url"] = "The URL must start with http:// or https://."
    if kind == "telegram" and not config.get("token"):
        errors["token"] = "A Telegram bot needs its token."
    values = {k: v for k, v in data.items() if k not in SECRET_KEYS}
    if errors or campaign is None:
        return _form_page(request, session, None, values, errors, 422)
    try:
        source = create_source(
            session=session,
            campaign=campaign,
            kind=data.get("kind", ""),
            config=config,
            interval_seconds=interval,
            name=data.get("name", "").strip()[:200],
        )
    except InvalidInput as exc:
        session.rollback()
        return _form_page(request, session, None, values, {exc.field or "kind": exc.message}, 422)
    _audit(session, user, "source.add", source, kind=source.kind)
    session.commit()
    return RedirectResponse("/admin/sources", status_code=303)


def _source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound("There is no such source.")
    return source


@router.get("/admin/sources/{source_id}", name="admin_source")
def source_edit(
    request: Request, session: SessionDep, user: AdminUser, source_id: DbId
) -> Response:
    """The source form with its current settings (secrets are never shown)."""
    source = _source(session, source_id)
    return _form_page(request, session, source, _values_of(source), {})


@router.post("/admin/sources/{source_id}", name="admin_source_update")
def source_update(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    _csrf: CsrfChecked,
    data: FormData,
    source_id: DbId,
) -> Response:
    """Change a source's name, address, hashtags, credentials or interval."""
    source = _source(session, source_id)
    errors: dict[str, str] = {}
    config, interval = _parse(data, errors)
    merged = {k: v for k, v in (source.config or {}).items() if k not in (*PLAIN_KEYS, "hashtags")}
    merged.update(config)
    url = merged.get("url")
    if url and not str(url).startswith(("http://", "https://")):
        errors["url"] = "The URL must start with http:// or https://."
    if source.kind in ("mastodon", "rss") and not url:
        errors["url"] = "This kind of source needs a URL."
    if errors:
        values = {**_values_of(source), **{k: v for k, v in data.items() if k not in SECRET_KEYS}}
        return _form_page(request, session, source, values, errors, 422)
    source.config = merged
    source.interval_seconds = interval
    source.name = data.get("name", "").strip()[:200] or source.name
    session.add(source)
    _audit(session, user, "source.update", source, fields=sorted(data))
    session.commit()
    return RedirectResponse("/admin/sources", status_code=303)


@router.post("/admin/sources/{source_id}/pause", name="admin_source_pause")
def source_pause(
    session: SessionDep, user: AdminUser, _csrf: CsrfChecked, data: FormData, source_id: DbId
) -> Response:
    """Pause (``enabled=0``) or resume (``enabled=1``) a source."""
    source = _source(session, source_id)
    source.enabled = data.get("enabled") == "1"
    if source.enabled:
        source.next_run_at = None  # resume now, not after an old backoff
    session.add(source)
    _audit(session, user, "source.resume" if source.enabled else "source.pause", source)
    session.commit()
    return RedirectResponse("/admin/sources", status_code=303)


async def _collect(request: Request, source_id: int) -> None:
    """Run one collection of one source after the response has been sent."""
    from aggregator.jobs import make_job_context, run_source

    ctx = make_job_context(request.app.state.settings, request.app.state.engine)
    try:
        await run_source(ctx, source_id, force=True)
    finally:
        await ctx.api_http.aclose()
        await ctx.media_http.aclose()


@router.post("/admin/sources/{source_id}/collect", name="admin_source_collect")
def source_collect(
    request: Request, session: SessionDep, user: AdminUser, _csrf: CsrfChecked, source_id: DbId
) -> Response:
    """Collect now; the page returns at once and health shows the result on reload."""
    source = _source(session, source_id)
    _audit(session, user, "source.collect", source)
    session.commit()
    return RedirectResponse(
        f"/admin/sources?collecting={source_id}",
        status_code=303,
        background=BackgroundTask(_collect, request, source_id),
    )
