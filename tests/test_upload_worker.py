"""The upload worker (services.uploads_worker): a process of its own for an upload's writes."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session

from aggregator.errors import AggregatorError, TooManyRequests
from aggregator.services import uploads as up
from aggregator.services.uploads_stream import UploadTooLarge
from aggregator.services.uploads_worker import UploadWorker
from tests.conftest import make_settings
from tests.factories import make_campaign
from tests.upload_support import app_client, counts, media_files, open_page, photo_jpeg, submit


@contextmanager
def writes_blocked(database_url: str) -> Iterator[None]:
    """Hold the database's write lock (SQLite) or the rate counters' table (PostgreSQL), so
    that the worker's first write of an upload (its rate count) waits."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("LOCK TABLE ratecounter IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def answered_while_the_worker_dies(
    worker: UploadWorker, database_url: str, send: Callable[[], Any]
) -> tuple[Any, Any]:
    """Call ``send`` (an upload) in a thread, kill the worker once the upload waits for it
    (its rate count blocked by ``writes_blocked``); the answer, and the process killed."""
    answers: list[Any] = []
    with writes_blocked(database_url):
        sending = threading.Thread(target=lambda: answers.append(send()))
        sending.start()
        deadline = time.monotonic() + 30
        waiting = []
        while not waiting and time.monotonic() < deadline:
            waiting = [c for c in list(worker._channels.values()) if c._pending]
            time.sleep(0.01)
        assert waiting, "the upload never reached the worker"
        waiting[0].process.kill()  # as if the worker crashed while the upload waited for it
        sending.join(timeout=30)
    assert not sending.is_alive()
    return answers[0], waiting[0].process


def test_an_upload_whose_worker_stops_is_refused_in_the_visitors_language_and_the_next_is_stored(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, settings):
        worker: UploadWorker = client.app.state.upload_worker  # type: ignore[attr-defined]
        open_page(client, campaign.slug, lang="ru")
        first = submit(client, campaign.slug, files=[("a.jpg", photo_jpeg(1), "image/jpeg")])
        assert first.status_code == 303
        files_of_one = len(media_files(settings))
        # Background work never preempts the event loop (uploads_stream.run_as_batch).
        [channel] = worker._channels.values()
        [writer] = [t for t in threading.enumerate() if t.name == "upload-writer"]
        for tid in (channel.process.pid, writer.native_id):
            assert os.sched_getscheduler(tid) == os.SCHED_BATCH
        answer, first_process = answered_while_the_worker_dies(
            worker,
            database_url,
            lambda: submit(client, campaign.slug, files=[("b.jpg", photo_jpeg(2), "image/jpeg")]),
        )
        assert answer.status_code == 503
        assert "Сейчас мы не смогли принять ваши фотографии" in answer.text
        assert counts(session) == (1, 1, 0)
        assert len(media_files(settings)) == files_of_one  # nothing of it stored
        again = submit(client, campaign.slug, files=[("b.jpg", photo_jpeg(2), "image/jpeg")])
        assert again.status_code == 303  # a new worker took it
        assert counts(session) == (2, 2, 0)
        assert len(media_files(settings)) == 2 * files_of_one
        [second_channel] = worker._channels.values()
    assert second_channel.process is not first_process
    assert not second_channel.process.is_alive()  # stopped with the application


def test_the_api_says_the_worker_stopped_in_json(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        worker: UploadWorker = client.app.state.upload_worker  # type: ignore[attr-defined]
        answer, _process = answered_while_the_worker_dies(
            worker,
            database_url,
            lambda: client.post(
                f"/api/v1/campaigns/{campaign.slug}/submissions",
                files=[("photos", ("c.jpg", photo_jpeg(3), "image/jpeg"))],
                data={"consent": "projection"},
                headers={"Accept-Language": "kk"},
            ),
        )
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "uploads_unavailable"
        assert error["message"].startswith("Қазір фотосуреттеріңізді қабылдай алмадық")
    assert counts(session) == (0, 0, 0)


@pytest.mark.parametrize(
    "error",
    [
        TooManyRequests("Slow down.", retry_after=90),
        up.SubmissionRefused([up.Problem("no_photos", up.MESSAGES["no_photos"], field="photos")]),
        up.UploadsClosed("Not yet.", opens_at=datetime(2027, 5, 9, 10, tzinfo=UTC)),
        UploadTooLarge("Too big.", filename="IMG_1.HEIC", limit=16 * 2**20),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_reach_the_web_process_whole(error: AggregatorError) -> None:
    """A step's error is pickled in the worker: its type, message and every attribute a page
    or a header uses survive, whatever its __init__ takes."""
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert back.args == error.args and back.__dict__ == error.__dict__
    assert up.problem_for(back) == up.problem_for(error)


def test_a_form_too_large_for_the_worker_is_refused_and_the_worker_keeps_serving(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    """200 fields of 16 KB (each within the form's caps) would not fit in one message to the
    worker: refused with 413 in the visitor's language, and the worker is not disturbed."""
    campaign = make_campaign(session)
    with app_client(tmp_path, database_url) as (client, _settings):
        worker: UploadWorker = client.app.state.upload_worker  # type: ignore[attr-defined]
        open_page(client, campaign.slug, lang="ru")
        hostile = submit(client, campaign.slug, data={"staged": ["x" * 16_000] * 190})
        assert hostile.status_code == 413
        assert "Не удалось прочитать форму" in hostile.text
        [channel] = worker._channels.values()
        fine = submit(client, campaign.slug, files=[("a.jpg", photo_jpeg(1), "image/jpeg")])
        assert fine.status_code == 303
        assert list(worker._channels.values()) == [channel] and not channel.dead
    assert counts(session) == (1, 1, 0)


@pytest.mark.anyio
async def test_calls_wait_for_room_while_the_worker_is_behind(
    tmp_path: Path, database_url: str, session: Session
) -> None:
    """With the worker paused, the calls fill the socket's buffer; the rest wait for room
    (not failing, not blocking the event loop) and all are answered once it runs again."""
    campaign = make_campaign(session)
    worker = UploadWorker(make_settings(tmp_path, database_url, upload_rate_limit=10**6))
    try:
        languages = tuple(campaign.languages)
        assert await worker.call("open", slug=campaign.slug, ip="192.0.2.1") == languages
        [channel] = worker._channels.values()
        os.kill(channel.process.pid, signal.SIGSTOP)
        calls = [
            asyncio.ensure_future(worker.call("open", slug=campaign.slug, ip=f"192.0.2.{n % 250}"))
            for n in range(3000)
        ]
        deadline = time.monotonic() + 30
        while channel._room is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the loop keeps running meanwhile
        assert channel._room is not None and not channel._room.done()  # the buffer is full
        os.kill(channel.process.pid, signal.SIGCONT)
        answers = await asyncio.wait_for(asyncio.gather(*calls), 120)
        assert answers == [languages] * len(calls) and not channel.dead
    finally:
        worker.stop()
