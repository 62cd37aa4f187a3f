"""The host's live control of an event's screens, and the screens' heartbeats.

``Event.control`` holds the state every display follows: ``blank``, ``paused``,
``silence_until`` (ISO time, a moment of silence is shown until then), and the last one-shot
``command`` (next, prev or jump to an item) with a sequence number ``seq`` that grows with
every change, so a display runs each command once and ignores those older than its page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from aggregator.errors import InvalidInput, NotFound
from aggregator.models import Event, Screen, ShareLink, utcnow
from aggregator.services.slideshows_settings import effective_settings

ACTIONS: Final = (
    "blank",
    "unblank",
    "pause",
    "resume",
    "next",
    "prev",
    "jump",
    "silence",
    "end_silence",
)
ONE_SHOT: Final = frozenset({"next", "prev", "jump"})
SCREEN_KEY_RE: Final = re.compile(r"\A[A-Za-z0-9_-]{8,64}\Z")
ITEM_ID_RE: Final = re.compile(r"\A[A-Za-z0-9_-]{1,40}(\.[0-9]{1,2})?\Z")
# A screen counts as connected while its heartbeats (every 30 s) keep coming.
CONNECTED_FOR: Final = timedelta(seconds=90)
MAX_SCREENS_PER_LINK: Final = 100


def control_state(event: Event, *, now: datetime | None = None) -> dict[str, Any]:
    """The control part of the feed; an expired silence reads as none."""
    raw = dict(event.control or {})
    now = now or utcnow()
    until = raw.get("silence_until")
    if until:
        try:
            if datetime.fromisoformat(until) <= now:
                until = None
        except ValueError:
            until = None
    command = raw.get("command") if isinstance(raw.get("command"), dict) else None
    return {
        "blank": bool(raw.get("blank")),
        "paused": bool(raw.get("paused")),
        "silence_until": until,
        "seq": int(raw.get("seq") or 0),
        "command": command,
    }


def apply_control(
    *, session: Session, event_id: int, action: str, item: str | None = None
) -> dict[str, Any]:
    """Apply one host action to the event and return the new control state (commits).

    The row is locked before it is read, so two hosts pressing buttons at once both count.
    """
    if action not in ACTIONS:
        raise InvalidInput("Unknown control action.", field="action")
    if action == "jump" and (not item or not ITEM_ID_RE.match(item)):
        raise InvalidInput("Choose the photo to show.", field="item")
    _fresh_write_transaction(session, Event, event_id)
    event = session.exec(select(Event).where(Event.id == event_id).with_for_update()).first()
    if event is None:
        session.rollback()
        raise NotFound("There is no such event.")
    state = control_state(event)
    now = utcnow()
    seq = state["seq"] + 1
    if action in {"blank", "unblank"}:
        state["blank"] = action == "blank"
    elif action in {"pause", "resume"}:
        state["paused"] = action == "pause"
    elif action == "silence":
        seconds = int(effective_settings(event)["silence_seconds"])
        state["silence_until"] = (now + timedelta(seconds=seconds)).isoformat()
        state["blank"] = False
    elif action == "end_silence":
        state["silence_until"] = None
    if action in ONE_SHOT:
        state["command"] = {"seq": seq, "action": action, "item": item}
        state["blank"] = False
    state["seq"] = seq
    event.control = {**state, "updated_at": now.isoformat()}
    session.add(event)
    session.commit()
    return state


def record_heartbeat(
    *,
    session: Session,
    link: ShareLink,
    screen_key: str,
    showing: str | None,
    label: str = "",
) -> Screen:
    """Upsert the screen's row: what it shows now and when it was last heard from."""
    if not SCREEN_KEY_RE.match(screen_key or ""):
        raise InvalidInput("Bad screen key.", field="screen")
    if showing is not None and not (ITEM_ID_RE.match(showing) or showing in _SPECIAL):
        showing = None
    _fresh_write_transaction(session, ShareLink, link.id)
    screen = session.exec(
        select(Screen).where(Screen.share_link_id == link.id, Screen.screen_key == screen_key)
    ).first()
    if screen is None:
        count = session.exec(
            select(func.count()).select_from(Screen).where(Screen.share_link_id == link.id)
        ).one()
        if count >= MAX_SCREENS_PER_LINK:
            # Forget the screen heard from longest ago rather than grow without bound.
            oldest = session.exec(
                select(Screen)
                .where(Screen.share_link_id == link.id)
                .order_by(col(Screen.last_seen_at))
            ).first()
            if oldest is not None:
                session.delete(oldest)
                session.flush()
        screen = Screen(share_link_id=link.id, screen_key=screen_key)  # type: ignore[arg-type]
    screen.showing = showing
    screen.label = label.strip()[:200]
    screen.last_seen_at = utcnow()
    session.add(screen)
    session.commit()
    return screen


def _fresh_write_transaction(session: Session, table: Any, row_id: int | None) -> None:
    """End the caller's (read) transaction and start one that holds the write lock.

    SQLite cannot upgrade a read transaction whose snapshot another writer has passed (it
    fails at once with "database is locked"); writing first takes the lock (waiting for it
    under busy_timeout) and on PostgreSQL locks the row, like SELECT … FOR UPDATE.
    """
    session.commit()
    if row_id is not None:
        session.execute(
            update(table).where(table.id == row_id).values(id=table.id),
            execution_options={"synchronize_session": False},
        )


_SPECIAL: Final = frozenset({"intro", "closing", "qr", "silence", "blank", "empty"})


@dataclass(frozen=True)
class ScreenStatus:
    """A screen as the host sees it on the control page."""

    id: int
    label: str
    layout: str
    showing: str | None
    last_seen_at: datetime
    connected: bool


def event_screens(*, session: Session, event_id: int) -> list[ScreenStatus]:
    """Screens of every share link of the event, most recently heard from first."""
    now = utcnow()
    rows = session.exec(
        select(Screen, ShareLink.layout)
        .join(ShareLink, col(ShareLink.id) == col(Screen.share_link_id))
        .where(ShareLink.event_id == event_id)
        .order_by(col(Screen.last_seen_at).desc())
    ).all()
    return [
        ScreenStatus(
            id=screen.id or 0,
            label=screen.label,
            layout=layout,
            showing=screen.showing,
            last_seen_at=screen.last_seen_at,
            connected=now - screen.last_seen_at <= CONNECTED_FOR,
        )
        for screen, layout in rows
    ]
