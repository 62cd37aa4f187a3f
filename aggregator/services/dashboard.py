"""Figures for the admin dashboard: submissions per day, per source and status, the queue's
age, and each collector's health. Plain data; templates draw it (the chart is inline SVG)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, cast, func
from sqlmodel import Session, col, select

from aggregator.models import Source, Submission, SubmissionStatus, utcnow

CHART_DAYS = 30


@dataclass(frozen=True)
class DayCount:
    """Submissions that arrived on one UTC day."""

    day: date
    count: int


@dataclass(frozen=True)
class Bar:
    """One bar of the per-day chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    day: date
    count: int


@dataclass(frozen=True)
class Chart:
    """Geometry of the per-day bar chart."""

    width: int
    height: int
    bars: list[Bar]
    maximum: int
    baseline: float


@dataclass(frozen=True)
class PendingStats:
    """How many items wait and since when."""

    count: int
    oldest_at: datetime | None

    @property
    def oldest_minutes(self) -> int | None:
        """Minutes the oldest pending item has waited."""
        if self.oldest_at is None:
            return None
        return max(0, int((utcnow() - self.oldest_at).total_seconds() // 60))


@dataclass(frozen=True)
class SourceHealth:
    """One source's state as the dashboard shows it."""

    source: Source
    state: str  # ok | failing | paused | waiting | never


def _day_expression(session: Session) -> object:
    if session.get_bind().dialect.name == "postgresql":
        # timestamptz → the UTC calendar day, whatever the server's time zone.
        return cast(func.timezone("UTC", col(Submission.created_at)), Date)
    return func.date(col(Submission.created_at))  # SQLite stores UTC text


def per_day(
    session: Session, *, days: int = CHART_DAYS, campaign_id: int | None = None
) -> list[DayCount]:
    """Counts for each of the last ``days`` UTC days (zero days included), oldest first."""
    today = utcnow().date()
    start = today - timedelta(days=days - 1)
    since = datetime.combine(start, datetime.min.time(), tzinfo=utcnow().tzinfo)
    day = _day_expression(session)
    query = select(day, func.count()).where(col(Submission.created_at) >= since)  # type: ignore[call-overload]
    if campaign_id is not None:
        query = query.where(col(Submission.campaign_id) == campaign_id)
    counts: dict[date, int] = {}
    for value, count in session.exec(query.group_by(day)).all():
        key = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        counts[key] = counts.get(key, 0) + int(count)
    return [
        DayCount(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0))
        for i in range(days)
    ]


def chart(points: list[DayCount], *, width: int = 720, height: int = 200) -> Chart:
    """Bar geometry for ``points``; the tallest bar fills the plot height."""
    top, bottom = 10.0, 24.0
    plot = height - top - bottom
    maximum = max((p.count for p in points), default=0)
    step = width / max(1, len(points))
    bars = []
    for index, point in enumerate(points):
        bar_height = plot * point.count / maximum if maximum else 0.0
        bars.append(
            Bar(
                x=round(index * step + step * 0.15, 2),
                y=round(top + plot - bar_height, 2),
                width=round(step * 0.7, 2),
                height=round(bar_height, 2),
                day=point.day,
                count=point.count,
            )
        )
    return Chart(width, height, bars, maximum, top + plot)


def by_source_and_status(session: Session) -> list[tuple[str, dict[str, int]]]:
    """Per source (or origin for uploads and imports): counts by status."""
    rows = session.exec(
        select(
            col(Submission.source_id),
            col(Submission.origin),
            col(Submission.status),
            func.count(),
        ).group_by(col(Submission.source_id), col(Submission.origin), col(Submission.status))
    ).all()
    names = {s.id: s.name or s.kind for s in session.exec(select(Source)).all()}
    table: dict[str, dict[str, int]] = {}
    for source_id, origin, status, count in rows:
        label = (
            names.get(source_id, str(origin))
            if source_id
            else str(getattr(origin, "value", origin))
        )
        key = getattr(status, "value", str(status))
        table.setdefault(label, {})[key] = table.get(label, {}).get(key, 0) + int(count)
    return sorted(table.items())


def pending(session: Session) -> PendingStats:
    """The number of pending items and the arrival time of the oldest."""
    count, oldest = session.exec(
        select(func.count(), func.min(col(Submission.created_at))).where(
            col(Submission.status) == SubmissionStatus.pending
        )
    ).one()
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=utcnow().tzinfo)
    elif isinstance(oldest, datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=utcnow().tzinfo)
    return PendingStats(int(count), oldest)


def source_health(session: Session) -> list[SourceHealth]:
    """Every source with a one-word state for people."""
    now = utcnow()
    result = []
    for source in session.exec(select(Source).order_by(col(Source.campaign_id), col(Source.id))):
        if not source.enabled:
            state = "paused"
        elif source.last_run_at is None:
            state = "never"
        elif source.last_error:
            state = "failing"
        elif source.next_run_at is not None and source.next_run_at > now:
            state = "waiting"
        else:
            state = "ok"
        result.append(SourceHealth(source, state))
    return result
