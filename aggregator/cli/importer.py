"""``aggregator submissions import``: photos received by e-mail or on a USB stick.

Each file becomes one submission (origin ``import``) through the same pipeline and into the
same moderation queue as uploads. Files already imported into the campaign (the same
processed picture) are refused rather than duplicated, so running the command twice on a
folder is safe. Exit status 1 when any file was refused, so scripts notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import click
from sqlmodel import Session, col, select

from aggregator.cli.common import cli_session
from aggregator.cli.content import submissions
from aggregator.config import Settings
from aggregator.media import ImageRejected, process_image
from aggregator.media.storage import LocalStorage
from aggregator.models import CONSENT_SCOPES, Campaign, MediaAsset, Origin, Submission
from aggregator.services.campaigns import get_campaign
from aggregator.services.ingest import IncomingImage, media_limits
from aggregator.services.uploads import ParticipantFields, store_submission

# Files that cameras, phones and operating systems leave next to photos.
SKIPPED_NAMES: Final = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})


class AlreadyImported(Exception):
    """The same picture is already a submission of the campaign."""


def parse_consent(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    """Click callback: ``projection,web`` → ("projection", "web"), known scopes only."""
    scopes = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    unknown = [s for s in scopes if s not in CONSENT_SCOPES]
    if unknown or not scopes:
        raise click.BadParameter(
            f"use one or more of {', '.join(CONSENT_SCOPES)}, separated by commas"
        )
    return scopes


def collect_files(paths: tuple[Path, ...]) -> Iterator[Path]:
    """The files named, and every file under the folders named (sorted, hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                if child.is_file() and child.name.lower() not in SKIPPED_NAMES:
                    yield child
        else:
            yield path


def import_file(
    *,
    session: Session,
    storage: LocalStorage,
    settings: Settings,
    campaign: Campaign,
    path: Path,
    fields: ParticipantFields,
) -> int:
    """Import one file; returns the new submission id (ImageRejected, AlreadyImported)."""
    limits = media_limits(settings)
    if path.stat().st_size > limits.max_bytes:
        raise ImageRejected(
            "too_large",
            f"The file is {path.stat().st_size / 2**20:.1f} MB; the limit is "
            f"{limits.max_bytes / 2**20:g} MB.",
        )
    image = process_image(path.read_bytes(), filename=path.name, limits=limits)
    existing = session.exec(
        select(Submission.id)
        .join(MediaAsset, col(MediaAsset.submission_id) == col(Submission.id))
        .where(Submission.campaign_id == campaign.id, MediaAsset.sha256 == image.sha256)
    ).first()
    if existing is not None:
        raise AlreadyImported(f"already imported (submission {existing})")
    result = store_submission(
        session=session,
        storage=storage,
        settings=settings,
        campaign=campaign,
        fields=fields,
        images=[IncomingImage(image)],
        origin=Origin.import_,
        with_receipt=False,  # nobody to give it to; organisers withdraw through moderation
    )
    return int(result.submission.id or 0)


@submissions.command("import")
@click.option("--campaign", "campaign_slug", required=True, help="Campaign slug.")
@click.option("--author", default="", help="Name to show for every photo (default: none).")
@click.option("--city", default="", help="City or community of every photo.")
@click.option(
    "--consent",
    default="projection",
    show_default=True,
    callback=parse_consent,
    help="Consent the senders gave, comma separated: projection, web, archive.",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def submissions_import(
    campaign_slug: str, author: str, city: str, consent: tuple[str, ...], paths: tuple[Path, ...]
) -> None:
    """Import photo files or folders; each file becomes one submission in the queue."""
    files = list(collect_files(paths))
    if not files:
        raise click.ClickException("No files found in the paths given.")
    fields = ParticipantFields(
        author_name=author.strip()[:200], city=city.strip()[:200], language="", consent=consent
    )
    imported: list[tuple[Path, int]] = []
    refused: list[tuple[Path, str]] = []
    with cli_session() as (settings, session):
        campaign = get_campaign(session=session, slug=campaign_slug)
        storage = LocalStorage(settings.effective_media_dir)
        with click.progressbar(
            files, label="Importing", item_show_func=lambda p: p.name if p else None
        ) as bar:
            for path in bar:
                try:
                    new_id = import_file(
                        session=session,
                        storage=storage,
                        settings=settings,
                        campaign=campaign,
                        path=path,
                        fields=fields,
                    )
                except ImageRejected as exc:
                    refused.append((path, exc.message))
                except AlreadyImported as exc:
                    refused.append((path, str(exc)))
                except OSError as exc:
                    refused.append((path, exc.strerror or str(exc)))
                else:
                    imported.append((path, new_id))
    click.echo(f"Imported {len(imported)} photo(s) into the moderation queue of {campaign_slug}.")
    if refused:
        click.echo(f"Refused {len(refused)} file(s):", err=True)
        for path, reason in refused:
            click.echo(f"  {path}: {reason}", err=True)
        raise SystemExit(1)


COMMANDS: tuple[click.Command, ...] = ()  # the command joins the existing `submissions` group
