"""Commands on submissions: list them, and decide on them like a moderator."""

from __future__ import annotations

import click
from sqlalchemy import func
from sqlmodel import col, select

from aggregator.cli.common import cli_session, echo_json_lines, positive_id
from aggregator.media.storage import LocalStorage
from aggregator.models import MediaAsset, Source, Submission, SubmissionStatus
from aggregator.services.campaigns import get_campaign
from aggregator.services.moderation import transition
from aggregator.services.takedown import take_down


@click.group()
def submissions() -> None:
    """Collected posts and uploads."""


@submissions.command("list")
@click.option("--campaign", "campaign_slug", required=True, help="Campaign slug.")
@click.option("--status", type=click.Choice([s.value for s in SubmissionStatus]))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
def submissions_list(campaign_slug: str, status: str | None, as_json: bool, limit: int) -> None:
    """List a campaign's submissions, oldest first."""
    with cli_session() as (_settings, session):
        campaign = get_campaign(session=session, slug=campaign_slug)
        media_count = (
            select(func.count())
            .where(col(MediaAsset.submission_id) == col(Submission.id))
            .scalar_subquery()
        )
        query = (
            select(Submission, Source.kind, media_count)
            .join(Source, col(Source.id) == col(Submission.source_id), isouter=True)
            .where(Submission.campaign_id == campaign.id)
            .order_by(col(Submission.id))
            .limit(limit)
        )
        if status:
            query = query.where(Submission.status == SubmissionStatus(status))
        rows = [
            {
                "id": sub.id,
                "status": sub.status.value,
                "source_kind": kind or sub.origin.value,
                "external_id": sub.external_id,
                "url": sub.url,
                "author": sub.author_name,
                "text": sub.text,
                "media_count": count,
            }
            for sub, kind, count in session.exec(query).all()
        ]
        if as_json:
            echo_json_lines(rows)
            return
        if not rows:
            click.echo("No submissions.")
        for row in rows:
            text = (row["text"] or "").replace("\n", " ")[:60]
            click.echo(
                f"{row['id']:>6} {row['status']:<9} {row['source_kind']:<9} "
                f"{row['media_count']} photo(s)  {row['author']}: {text}"
            )


def _decide(submission_id: int, to: SubmissionStatus, reason: str) -> None:
    with cli_session() as (_settings, session):
        submission = transition(
            session=session, submission_id=submission_id, to=to, actor_label="cli", reason=reason
        )
        click.echo(f"Submission {submission.id} is now {submission.status.value}.")


@submissions.command("approve")
@click.argument("submission_id", type=int, callback=positive_id)
def submissions_approve(submission_id: int) -> None:
    """Approve a pending submission so slideshows show it."""
    _decide(submission_id, SubmissionStatus.approved, "")


@submissions.command("reject")
@click.argument("submission_id", type=int, callback=positive_id)
@click.option("--reason", default="", help="Why (kept in the audit).")
def submissions_reject(submission_id: int, reason: str) -> None:
    """Reject a pending submission."""
    _decide(submission_id, SubmissionStatus.rejected, reason)


@submissions.command("remove")
@click.argument("submission_id", type=int, callback=positive_id)
@click.option("--reason", default="", help="Why (kept in the audit).")
def submissions_remove(submission_id: int, reason: str) -> None:
    """Take an approved submission down from every screen and export, and erase its files."""
    with cli_session() as (settings, session):
        submission = take_down(
            session=session,
            storage=LocalStorage(settings.effective_media_dir),
            submission_id=submission_id,
            actor_id=None,
            actor_label="cli",
            reason=reason,
        )
        click.echo(f"Submission {submission.id} is now {submission.status.value}.")


COMMANDS = (submissions,)
