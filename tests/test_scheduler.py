"""Exactly one scheduler collects, across processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from aggregator.config import Settings
from aggregator.jobs import make_job_context
from aggregator.scheduler import CollectorScheduler, try_lock
from tests.factories import make_campaign, make_source

HOLDER = """
import sys, time
from aggregator.config import Settings
from aggregator.db import make_engine
from aggregator.scheduler import try_lock
settings = Settings(_env_file=None, database_url=sys.argv[1], var_dir=sys.argv[2])
lock = try_lock(make_engine(sys.argv[1]), settings)
print("held" if lock else "busy", flush=True)
time.sleep(60)
"""


def test_second_process_cannot_take_the_lock_until_the_first_dies(
    settings: Settings, engine: Engine
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, settings.effective_database_url, str(settings.var_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert try_lock(engine, settings) is None
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    deadline = time.monotonic() + 10
    lock = try_lock(engine, settings)
    while lock is None and time.monotonic() < deadline:  # PostgreSQL notices the dead session
        time.sleep(0.2)
        lock = try_lock(engine, settings)
    assert lock is not None
    assert try_lock(engine, settings) is None  # held by us now, even for this same process
    lock.release()
    again = try_lock(engine, settings)
    assert again is not None
    again.release()


@pytest.mark.anyio
async def test_jobs_follow_enabled_sources(
    settings: Settings, engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session)
    first = make_source(session, campaign, interval_seconds=120)
    second = make_source(session, campaign, interval_seconds=600)
    scheduler = CollectorScheduler(make_job_context(settings, engine))
    try:
        scheduler.sync_jobs()
        assert {job.id for job in scheduler.scheduler.get_jobs()} == {
            f"source-{first.id}",
            f"source-{second.id}",
        }
        scheduler.start()  # adds housekeeping; stays paused without the lock being taken yet
        for job_id in ("housekeeping", "recheck-upstream", "alerts"):
            assert scheduler.scheduler.get_job(job_id) is not None
        job = scheduler.scheduler.get_job(f"source-{first.id}")
        assert job.max_instances == 1 and job.coalesce
        second.enabled = False
        session.add(second)
        session.commit()
        scheduler.sync_jobs()
        source_jobs = {j.id for j in scheduler.scheduler.get_jobs() if j.id.startswith("source-")}
        assert source_jobs == {f"source-{first.id}"}
    finally:
        scheduler.shutdown()
        await scheduler.ctx.api_http.aclose()
        await scheduler.ctx.media_http.aclose()
