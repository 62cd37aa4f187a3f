"""Group commit of submissions: several uploads in one transaction, each with its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from aggregator.config import Settings
from aggregator.media import ProcessedImage, process_image
from aggregator.media.storage import LocalStorage
from aggregator.models import Campaign, MediaAsset, Submission
from aggregator.services import uploads_commit
from aggregator.services.ingest import IncomingImage, Ingested
from aggregator.services.uploads import ParticipantFields, store_submission
from aggregator.services.uploads_commit import GroupCommitter, committer_for
from tests.factories import jpeg_bytes, make_campaign
from tests.upload_support import counts, media_files

FIELDS = ParticipantFields(author_name="Aigerim", consent=("projection",))


def _in_one_group(
    engine: Engine, committer: GroupCommitter, calls: list[Callable[[Session], Ingested]]
) -> list[Ingested | BaseException]:
    """Run ``calls`` in threads while the writer's turn is held, so that they queue up and
    are written as one group when it is released."""
    outcomes: list[Ingested | BaseException] = [RuntimeError("not run")] * len(calls)

    def run(index: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                outcomes[index] = calls[index](session)
            except Exception as exc:
                outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with committer._turn:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(committer._queue) < len(calls) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(committer._queue) == len(calls)
    for thread in threads:
        thread.join()
    return outcomes


def _store(
    settings: Settings, storage: LocalStorage, campaign: Campaign, image: ProcessedImage
) -> Callable[[Session], Ingested]:
    def call(session: Session) -> Ingested:
        return store_submission(
            session=session,
            storage=storage,
            settings=settings,
            campaign=campaign,
            fields=FIELDS,
            images=[IncomingImage(image, "a sign")],
        )

    return call


def test_identical_photos_sent_together_each_get_their_own_files(
    settings: Settings, engine: Engine, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    image = process_image(jpeg_bytes())  # one object: the very same bytes for every upload
    committer = committer_for(session)
    outcomes = _in_one_group(
        engine, committer, [_store(settings, storage, campaign, image) for _ in range(5)]
    )
    assert all(isinstance(o, Ingested) and o.receipt_token for o in outcomes)
    assert counts(session) == (5, 5, 0)
    assets = session.exec(select(MediaAsset)).all()
    keys = [key for asset in assets for key in asset.keys.values()]
    assert len(keys) == len(set(keys)) == 5 * len(image.derivatives)
    stored = {str(p.relative_to(settings.effective_media_dir)) for p in media_files(settings)}
    assert stored == set(keys)
    # The later copies are flagged as duplicates of an earlier one, as one by one.
    assert sum(asset.duplicate_of_id is not None for asset in assets) == 4


def test_a_submission_that_fails_in_a_group_fails_alone(
    settings: Settings, engine: Engine, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    gone = Campaign(id=campaign.id + 1000, slug="gone", name="Gone")  # type: ignore[operator]
    calls = [
        _store(settings, storage, campaign, process_image(jpeg_bytes(color=(10, 20, 30)))),
        _store(settings, storage, gone, process_image(jpeg_bytes(color=(200, 20, 30)))),
        _store(settings, storage, campaign, process_image(jpeg_bytes(color=(10, 200, 30)))),
    ]
    first, failed, third = _in_one_group(engine, committer_for(session), calls)
    assert isinstance(failed, IntegrityError)  # no such campaign: its rows cannot exist
    assert isinstance(first, Ingested) and isinstance(third, Ingested)
    assert counts(session) == (2, 2, 0)
    stored = session.exec(select(Submission.id)).all()
    assert set(stored) == {first.submission.id, third.submission.id}
    # The refused one's files went with it; the others' are all there.
    keys = {key for asset in session.exec(select(MediaAsset)).all() for key in asset.keys.values()}
    files = {str(p.relative_to(settings.effective_media_dir)) for p in media_files(settings)}
    assert files == keys


def test_an_interrupted_group_leaves_nobody_waiting(
    settings: Settings, engine: Engine, session: Session
) -> None:
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)

    def interrupt(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SUBMISSION"):
            raise KeyboardInterrupt  # as Ctrl-C arriving while the group writes its rows

    event.listen(engine, "before_cursor_execute", interrupt)
    outcomes: list[BaseException] = []

    def run() -> None:
        with Session(engine, expire_on_commit=False) as own:
            try:
                _store(settings, storage, campaign, process_image(jpeg_bytes()))(own)
            except BaseException as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    event.remove(engine, "before_cursor_execute", interrupt)
    assert not any(thread.is_alive() for thread in threads)
    assert len(outcomes) == 3 and all(isinstance(o, KeyboardInterrupt) for o in outcomes)
    assert counts(session) == (0, 0, 0)
    assert media_files(settings) == []


def test_one_committer_per_engine(session: Session) -> None:
    assert committer_for(session) is committer_for(session)
    with Session(session.get_bind()) as other:
        assert committer_for(other) is committer_for(session)


def test_a_group_waits_for_an_upload_still_on_its_way(
    settings: Settings, engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first submission to queue waits for another upload in progress (its photos still
    arriving) and both are written in one transaction, as soon as the second queues."""
    monkeypatch.setattr(uploads_commit, "LINGER_SECONDS", 60)  # only the second ends the wait
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    committer = committer_for(session)
    commits: list[object] = []
    count_commit = commits.append  # one bound method, so that it can be removed
    event.listen(engine, "commit", count_commit)
    first: list[Ingested] = []

    def first_upload() -> None:
        with committer.arrivals.in_progress(), Session(engine, expire_on_commit=False) as own:
            first.append(_store(settings, storage, campaign, process_image(jpeg_bytes()))(own))

    with committer.arrivals.in_progress():  # the second upload: admitted, its photos still arriving
        thread = threading.Thread(target=first_upload)
        thread.start()
        deadline = time.monotonic() + 30
        while not committer._queue and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(committer._queue) == 1 and not commits  # queued, and waiting
        second = _store(settings, storage, campaign, process_image(jpeg_bytes(color=(9, 9, 9))))(
            session
        )
    thread.join(timeout=30)
    event.remove(engine, "commit", count_commit)
    assert not thread.is_alive() and first and second.receipt_token
    assert len(commits) == 1  # one transaction for both
    assert counts(session) == (2, 2, 0)


@pytest.mark.parametrize("in_progress", [True, False], ids=["lone upload", "bulk import"])
def test_a_lone_submission_never_waits(
    settings: Settings,
    engine: Engine,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    in_progress: bool,
) -> None:
    monkeypatch.setattr(uploads_commit, "LINGER_SECONDS", 60)  # a wait would hang the test
    storage = LocalStorage(settings.effective_media_dir)
    campaign = make_campaign(session)
    committer = committer_for(session)
    done: list[Ingested] = []

    def upload() -> None:
        with Session(engine, expire_on_commit=False) as own:
            store = _store(settings, storage, campaign, process_image(jpeg_bytes()))
            if in_progress:
                with committer.arrivals.in_progress():
                    done.append(store(own))
            else:
                done.append(store(own))

    thread = threading.Thread(target=upload)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive() and done and counts(session) == (1, 1, 0)
