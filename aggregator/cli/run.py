"""Commands that run things: init, serve, worker, collect, demo."""

from __future__ import annotations

import asyncio
import os

import click

from aggregator.cli.common import engine_for, load_settings, positive_id


@click.command()
def init() -> None:
    """Create or upgrade the database to the newest schema."""
    settings = load_settings()
    engine = engine_for(settings)
    engine.dispose()
    settings.effective_media_dir.mkdir(parents=True, exist_ok=True)
    settings.effective_secret_key()
    click.echo(f"Database ready: {engine.url.render_as_string(hide_password=True)}")


def run_server(host: str, port: int, workers: int, scheduler: bool) -> None:
    """Serve the web app (migrating first), with or without the in-process scheduler."""
    import uvicorn

    engine_for(load_settings()).dispose()
    # Workers are separate processes: they build the app from the environment.
    os.environ["AGGREGATOR_SCHEDULER_ENABLED"] = "true" if scheduler else "false"
    uvicorn.run(
        "aggregator.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=load_settings().trust_proxy_headers,
        log_level="info",
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-scheduler", is_flag=True, help="Do not collect here (use `aggregator worker`).")
def serve(host: str, port: int, workers: int, no_scheduler: bool) -> None:
    """Serve the web application (and, by default, the collector scheduler)."""
    run_server(host, port, workers, not no_scheduler and load_settings().scheduler_enabled)


@click.command()
def worker() -> None:
    """Run only the collector scheduler (for deployments with several web workers)."""
    from aggregator.scheduler import run_worker

    settings = load_settings()
    engine_for(settings).dispose()
    click.echo("Collector worker started; Ctrl+C stops it.")
    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        click.echo("Stopped.")


@click.command()
@click.option("--source", "source_id", type=int, callback=positive_id, help="Only this source.")
@click.option("--once", is_flag=True, required=True, help="Run each source once and exit.")
def collect(source_id: int | None, once: bool) -> None:
    """Run collectors now, once (the same functions the scheduler calls)."""
    from aggregator.jobs import collect_once

    settings = load_settings()
    engine = engine_for(settings)
    try:
        reports = asyncio.run(collect_once(settings, engine, source_id=source_id))
    finally:
        engine.dispose()
    failed = 0
    for report in reports:
        click.echo(report.summary())
        failed += not report.ok
    if not reports:
        click.echo("No enabled sources." if source_id is None else f"No source {source_id}.")
        raise SystemExit(1 if source_id is not None else 0)
    raise SystemExit(1 if failed else 0)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Only create the demo data.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Create a fresh demo in ./var/demo and serve it."""
    from aggregator.demo import build_demo

    var_dir = os.path.abspath(os.path.join("var", "demo"))
    base_url = f"http://{host}:{port}"
    os.environ["AGGREGATOR_VAR_DIR"] = var_dir
    os.environ["AGGREGATOR_PUBLIC_BASE_URL"] = base_url
    for name in ("AGGREGATOR_DATABASE_URL", "AGGREGATOR_MEDIA_DIR"):
        os.environ.pop(name, None)
    info = build_demo(load_settings())
    click.echo(info.describe())
    if not no_serve:
        run_server(host, port, 1, scheduler=False)


COMMANDS = (init, serve, worker, collect, demo)
