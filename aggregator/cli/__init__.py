"""The ``aggregator`` command. Every subcommand builds its own ``Settings()``; domain errors
become one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from typing import Any

import click

from aggregator import __version__
from aggregator.errors import AggregatorError


class FriendlyGroup(click.Group):
    """A group whose commands report AggregatorError as ``Error: ...`` with exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AggregatorError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(1)
        except OSError as exc:  # unreadable paths, full disks: say what and where
            click.echo(f"Error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
            ctx.exit(1)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aggregator")
def cli() -> None:
    """We Remember: collect, moderate and project remembrance photos."""


def _register() -> None:
    from aggregator.cli import content, export, importer, manage, run

    for module in (run, manage, content, importer, export):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(standalone_mode=True))
