"""The only module that knows APScheduler: one job per enabled source, plus housekeeping.

Exactly one process collects: the scheduler starts only while it holds a lock (a PostgreSQL
advisory lock on a dedicated connection, or a file lock next to a SQLite database). Other
processes retry every ``LOCK_RETRY_SECONDS`` and take over if the holder dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import random
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, col, select

from aggregator.config import Settings
from aggregator.db import is_sqlite, make_engine
from aggregator.jobs import JobContext, make_job_context, run_source
from aggregator.maintenance import housekeeping, recheck_upstream, send_alerts
from aggregator.models import Source, utcnow

log = logging.getLogger(__name__)

LOCK_KEY = 0x5752_4D42  # "WRMB": the advisory lock id of the collector scheduler
LOCK_RETRY_SECONDS = 30
RESYNC_SECONDS = 60


class SchedulerLock(Protocol):
    """Held while this process is the one that collects."""

    def release(self) -> None:
        """Give the lock up."""


class _AdvisoryLock:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def release(self) -> None:
        try:
            self.connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
        finally:
            self.connection.close()


class _FileLock:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def try_lock(engine: Engine, settings: Settings) -> SchedulerLock | None:
    """Take the single-scheduler lock, or None if another process holds it."""
    if not is_sqlite(engine):
        connection = engine.connect()
        held = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
        connection.commit()
        if held:
            return _AdvisoryLock(connection)
        connection.close()
        return None
    database = engine.url.database or str(settings.var_dir / "aggregator.db")
    path = Path(database).with_suffix(".scheduler.lock")
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return _FileLock(handle)


class CollectorScheduler:
    """Keeps one APScheduler job per enabled source in step with the database."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
        )
        self.lock: SchedulerLock | None = None
        self._task: asyncio.Task[None] | None = None

    def sync_jobs(self) -> None:
        """Add, update or drop source jobs to match the database."""
        with Session(self.ctx.engine) as session:
            sources = session.exec(select(Source).where(col(Source.enabled).is_(True))).all()
        wanted = {f"source-{s.id}": s for s in sources}
        for job in self.scheduler.get_jobs():
            if job.id.startswith("source-") and job.id not in wanted:
                job.remove()
        for job_id, source in wanted.items():
            existing = self.scheduler.get_job(job_id)
            interval = source.interval_seconds
            if existing is not None and existing.trigger.interval == timedelta(seconds=interval):
                continue
            # Jitter spreads sources so they do not all hit the network at the same second.
            self.scheduler.add_job(
                run_source,
                "interval",
                seconds=interval,
                jitter=max(1, interval // 10),
                args=[self.ctx, source.id],
                id=job_id,
                replace_existing=True,
                next_run_time=utcnow() + timedelta(seconds=random.uniform(1, 10)),
            )

    async def _hold_lock(self) -> None:
        while True:
            if self.lock is None:
                self.lock = await asyncio.to_thread(try_lock, self.ctx.engine, self.ctx.settings)
                if self.lock is not None:
                    log.info("this process (pid %s) now runs the collectors", os.getpid())
                    self.scheduler.resume()
            if self.lock is not None:
                await asyncio.to_thread(self.sync_jobs)
            await asyncio.sleep(RESYNC_SECONDS if self.lock else LOCK_RETRY_SECONDS)

    def start(self) -> None:
        """Start paused; jobs run only once the lock is held."""
        housekeeping_jobs = [
            ("housekeeping", asyncio.to_thread, [housekeeping, self.ctx], {"hours": 1}),
            ("recheck-upstream", recheck_upstream, [self.ctx], {"minutes": 30}),
            ("alerts", send_alerts, [self.ctx], {"seconds": 60}),
        ]
        for job_id, func, args, every in housekeeping_jobs:
            self.scheduler.add_job(
                func, "interval", args=args, id=job_id, replace_existing=True, **every
            )
        self.scheduler.start(paused=True)
        self._task = asyncio.get_running_loop().create_task(self._hold_lock())

    def shutdown(self, wait: bool = False) -> None:
        """Stop collecting and release the lock."""
        if self._task is not None:
            self._task.cancel()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        if self.lock is not None:
            self.lock.release()
            self.lock = None


async def start_scheduler(state: Any) -> CollectorScheduler:
    """Start the scheduler for a running web app (uses ``app.state``'s engine and settings)."""
    ctx = make_job_context(state.settings, state.engine)
    scheduler = CollectorScheduler(ctx)
    scheduler.start()
    return scheduler


async def run_worker(settings: Settings) -> None:
    """``aggregator worker``: the scheduler alone, until cancelled."""
    engine = make_engine(settings.effective_database_url)
    scheduler = CollectorScheduler(make_job_context(settings, engine))
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown()
        await scheduler.ctx.api_http.aclose()
        await scheduler.ctx.media_http.aclose()
        engine.dispose()
