"""Commands that configure an installation: users, campaigns, sources, events."""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlmodel import select

from aggregator.cli.common import cli_session, echo_json_lines, parse_when
from aggregator.models import Campaign, ModerationMode, Role, Source
from aggregator.services.campaigns import SOURCE_KINDS, create_campaign, create_source, get_campaign
from aggregator.services.events import create_event, share_url
from aggregator.services.users import create_user


@click.group()
def users() -> None:
    """Moderator, host and admin accounts."""


@users.command("add")
@click.option("--email", required=True, help="The person's e-mail address (their login).")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(email: str, role: str, password_stdin: bool) -> None:
    """Create an account; without --password-stdin, print a one-time invitation link."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    with cli_session() as (settings, session):
        user, invite = create_user(session=session, email=email, role=Role(role), password=password)
        click.echo(f"Created {user.role.value} {user.email} (id {user.id}).")
        if invite:
            base = settings.public_base_url.rstrip("/")
            click.echo(f"Invitation link (valid 7 days): {base}/invite/{invite}")


@click.group()
def campaigns() -> None:
    """Remembrance campaigns."""


@campaigns.command("create")
@click.option("--slug", required=True, help="Short name used in URLs, e.g. we-remember-2027.")
@click.option("--name", required=True, help="The campaign's name.")
@click.option("--hashtag", "hashtags", multiple=True, required=True, help="Repeatable.")
@click.option("--description", default="", help="A few sentences shown on the upload page.")
@click.option("--sign-text", default="We Remember", help="The words on the sign.")
@click.option("--opens", help="Uploads open at (ISO 8601 with zone).")
@click.option("--closes", help="Uploads close at (ISO 8601 with zone).")
@click.option(
    "--moderation",
    type=click.Choice([m.value for m in ModerationMode]),
    default=ModerationMode.manual.value,
    show_default=True,
)
def campaigns_create(
    slug: str,
    name: str,
    hashtags: tuple[str, ...],
    description: str,
    sign_text: str,
    opens: str | None,
    closes: str | None,
    moderation: str,
) -> None:
    """Create a campaign."""
    with cli_session() as (settings, session):
        campaign = create_campaign(
            session=session,
            slug=slug,
            name=name,
            hashtags=list(hashtags),
            description=description,
            sign_text=sign_text,
            upload_opens_at=parse_when(opens, "--opens"),
            upload_closes_at=parse_when(closes, "--closes"),
            moderation_mode=ModerationMode(moderation),
        )
        base = settings.public_base_url.rstrip("/")
        click.echo(f"Created campaign {campaign.slug} (id {campaign.id}): {base}/c/{campaign.slug}")


@campaigns.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def campaigns_list(as_json: bool) -> None:
    """List campaigns."""
    with cli_session() as (_settings, session):
        rows = session.exec(select(Campaign).order_by(Campaign.id)).all()  # type: ignore[arg-type]
        if as_json:
            echo_json_lines(
                [{"id": c.id, "slug": c.slug, "name": c.name, "hashtags": c.hashtags} for c in rows]
            )
            return
        if not rows:
            click.echo("No campaigns yet. Create one with: aggregator campaigns create --help")
        for c in rows:
            tags = " ".join(f"#{t}" for t in c.hashtags)
            click.echo(f"{c.id:>4}  {c.slug:<24} {c.name}  {tags}")


@click.group()
def sources() -> None:
    """Collectors that gather posts for a campaign."""


@sources.command("add")
@click.option("--campaign", "campaign_slug", required=True, help="Campaign slug.")
@click.option("--kind", required=True, type=click.Choice(SOURCE_KINDS))
@click.option("--url", help="Instance, service, feed or Bot API base URL.")
@click.option("--hashtag", "hashtags", multiple=True, help="Repeatable; default: the campaign's.")
@click.option("--token", help="Access token (Mastodon) or bot token (Telegram).")
@click.option("--handle", help="Bluesky handle used to log in.")
@click.option("--app-password", help="Bluesky app password.")
@click.option("--interval", default=300, show_default=True, help="Seconds between runs.")
@click.option("--name", default="", help="A label for people.")
def sources_add(
    campaign_slug: str,
    kind: str,
    url: str | None,
    hashtags: tuple[str, ...],
    token: str | None,
    handle: str | None,
    app_password: str | None,
    interval: int,
    name: str,
) -> None:
    """Add a source to a campaign."""
    config: dict[str, Any] = {
        key: value
        for key, value in {
            "url": url,
            "token": token,
            "handle": handle,
            "app_password": app_password,
        }.items()
        if value
    }
    with cli_session() as (_settings, session):
        campaign = get_campaign(session=session, slug=campaign_slug)
        config["hashtags"] = list(hashtags) or list(campaign.hashtags)
        source = create_source(
            session=session,
            campaign=campaign,
            kind=kind,
            config=config,
            interval_seconds=interval,
            name=name,
        )
        click.echo(f"Added source {source.id}: {source.name}")


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def sources_list(as_json: bool) -> None:
    """List sources with their health."""
    with cli_session() as (_settings, session):
        rows = session.exec(select(Source).order_by(Source.id)).all()  # type: ignore[arg-type]
        data = [
            {
                "id": s.id,
                "campaign_id": s.campaign_id,
                "kind": s.kind,
                "name": s.name,
                "enabled": s.enabled,
                "interval": s.interval_seconds,
                "last_success_at": s.last_success_at.isoformat() if s.last_success_at else None,
                "last_error": s.last_error,
                "consecutive_failures": s.consecutive_failures,
                "items_collected": s.items_collected,
            }
            for s in rows
        ]
        if as_json:
            echo_json_lines(data)
            return
        if not data:
            click.echo("No sources yet. Add one with: aggregator sources add --help")
        for row in data:
            state = "on " if row["enabled"] else "off"
            health = f"ok {row['last_success_at']}" if row["last_success_at"] else "never ran"
            if row["consecutive_failures"]:
                health = f"FAILING x{row['consecutive_failures']}: {row['last_error']}"
            click.echo(
                f"{row['id']:>4} {state} {row['kind']:<9} every {row['interval']}s  "
                f"{row['items_collected']} items  {health}  {row['name']}"
            )


@click.group()
def events() -> None:
    """Commemorative events and their slideshows."""


@events.command("create")
@click.option("--campaign", "campaign_slug", required=True, help="Campaign slug.")
@click.option("--name", required=True, help="The event's name.")
@click.option("--starts", help="Start time (ISO 8601 with zone).")
@click.option("--interval", type=int, help="Seconds per slide (default 8).")
def events_create(campaign_slug: str, name: str, starts: str | None, interval: int | None) -> None:
    """Create an event; prints its id and the slideshow share link."""
    with cli_session() as (settings, session):
        campaign = get_campaign(session=session, slug=campaign_slug)
        event, link = create_event(
            session=session,
            campaign=campaign,
            name=name,
            starts_at=parse_when(starts, "--starts"),
            interval=interval,
        )
        click.echo(f"Created event {event.id}: {event.name}")
        click.echo(f"Slideshow link: {share_url(settings.public_base_url, link)}")


COMMANDS = (users, campaigns, sources, events)
