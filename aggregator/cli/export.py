"""``aggregator export``: write an event's bundle, PDF, PPTX, poster or archive to a file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator.cli.common import cli_session, positive_id
from aggregator.errors import NotFound
from aggregator.media.storage import LocalStorage
from aggregator.models import Event
from aggregator.services.exports import FORMATS, export_event


@click.command("export")
@click.option(
    "--event",
    "event_id",
    required=True,
    type=int,
    callback=positive_id,
    help="The event's id (printed by `aggregator events create`).",
)
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(FORMATS),
    help="bundle: offline slideshow zip; pdf; pptx; poster (PDF, or .jpg/.png by "
    "the file name); archive: BagIt zip for museums.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write; replaced only once the export is complete.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export(event_id: int, fmt: str, output: Path, quiet: bool) -> None:
    """Export an event's approved photos (only those with the matching consent)."""
    with cli_session() as (settings, session):
        event = session.get(Event, event_id)
        if event is None:
            raise NotFound(f"There is no event {event_id}.")
        storage = LocalStorage(settings.effective_media_dir)
        with click.progressbar(
            length=1000,
            label=f"Exporting {fmt}",
            file=sys.stderr,
            hidden=quiet,
        ) as bar:
            position = [0]

            def progress(fraction: float) -> None:
                target = int(min(1.0, fraction) * 1000)
                if target > position[0]:
                    bar.update(target - position[0])
                    position[0] = target

            result = export_event(
                session=session,
                storage=storage,
                settings=settings,
                event=event,
                fmt=fmt,
                out_path=output,
                progress=progress,
            )
        click.echo(f"Wrote {result.path} ({result.photos} photos)")


COMMANDS = (export,)
