"""The daily rollups behind the managers' reports, and the three ways they change.

Each rollup zone (``RECOVERY_REPORT_ROLLUP_ZONES``) has a mark: its rollups
count every case event (opened, first claim, decision, request for documents,
expiry) whose time falls in [``rolled_from``, ``rolled_until``), grouped by
calendar day of the zone. A report reads the rollups for that span and counts
the rest (the last minutes before now, and days before ``rolled_from``) from
the cases with the same statements (``measures``): so its work grows with the
number of days, not with the number of decided cases.

* ``roll_up`` (the scheduler's ``report_rollups`` job) adds the events from
  the mark up to a few minutes before now and moves the mark, in one
  transaction. Run again with nothing new, it adds nothing. Its first run (and
  ``flask reports rebuild``, which forgets everything first) starts at the
  first case, so demo data and older data are counted.
* ``case_opened`` / ``case_moved`` / ``cases_expired``: the lifecycle calls
  them as a case is opened, first claimed, decided, sent back for documents or
  expired. An event behind the mark would be missed by both the rollups and
  the report's live count: a first claim of a case submitted days ago (it
  counts on the day the case was submitted), or a decision made with an
  earlier time. That share is added in one ``INSERT … SELECT … ON CONFLICT DO
  UPDATE SET n = n + excluded.n`` (atomic on SQLite and PostgreSQL alike).
  Events after the mark need nothing: the report counts them live until the
  job rolls them up. They only flush.

On PostgreSQL the job takes the marks ``FOR UPDATE`` and the hooks ``FOR
SHARE``, so an event is counted once whichever commits first. Rolling up and
rebuilding also run one at a time (an advisory lock): while no zone has a mark
there is no row to lock, and two first runs at once (the job beside ``flask
reports rebuild``) would each insert the marks and count the same cases.
SQLite has one writer at a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import (
    BigInteger,
    String,
    case,
    delete,
    func,
    literal,
    select,
    true,
    union_all,
)

from ..database import one_at_a_time
from ..extensions import db
from ..models import Case, ReportRollup, ReportRollupMark
from . import measures as m

# The job rolls up to this long before now, so that a transaction that began
# before the mark has committed by the time its events are rolled up.
SETTLE = timedelta(minutes=2)
KEY = ["zone", "day", "measure", "reviewer_id", "key"]
ROLLING_UP = "report rollups"


def zones() -> tuple[str, ...]:
    return tuple(current_app.config["RECOVERY_REPORT_ROLLUP_ZONES"])


def _insert():
    if m.postgres():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _upsert(rows_select) -> None:
    """Add counted rows to the rollups; for the largest-value measures keep the larger."""
    insert = _insert()
    statement = insert(ReportRollup).from_select(KEY + ["n"], rows_select)
    larger = func.greatest if m.postgres() else func.max
    statement = statement.on_conflict_do_update(
        index_elements=KEY,
        set_={
            "n": case(
                (ReportRollup.measure.in_(m.LARGEST), larger(ReportRollup.n, statement.excluded.n)),
                else_=ReportRollup.n + statement.excluded.n,
            )
        },
    )
    db.session.execute(statement)


def marks(*, lock: str | None = None) -> dict[str, ReportRollupMark]:
    """The zones' marks; ``lock`` ("update" or "share") locks them on PostgreSQL
    and reads them afresh, so a mark loaded earlier in the unit shows what the
    unit that held the lock committed."""
    query = select(ReportRollupMark).where(ReportRollupMark.zone.in_(zones()))
    if lock and m.postgres():
        query = query.with_for_update(read=(lock == "share")).execution_options(populate_existing=True)
    return {mark.zone: mark for mark in db.session.execute(query).scalars()}


# --- the hooks: one case's share as it happens ---------------------------------


def _record(event: str, case_ids: list[int], event_time: datetime, now: datetime) -> None:
    """Add the cases' share of ``event`` to every zone whose mark is past ``event_time``."""
    if not case_ids:
        return
    behind = [mark for mark in marks(lock="share").values() if mark.rolled_from <= event_time < mark.rolled_until]
    parts = []
    for mark in behind:
        at = event_time.astimezone(ZoneInfo(mark.zone)).date()
        for measure in m.measures():
            if measure.event != event:
                continue
            if measure.name == "asked":
                # Counted from the decision rows when rolled up; the row is
                # written beside this transition, at this time.
                parts.append(
                    select(
                        literal(mark.zone, String),
                        literal(at.isoformat(), String),
                        literal("asked", String),
                        literal(0),
                        literal(""),
                        literal(len(case_ids), BigInteger),
                    ).where(true())
                )
            else:
                parts.append(
                    m.measure_select(
                        measure,
                        mark.zone,
                        at,
                        Case.id.in_(case_ids),
                        measure.time >= mark.rolled_from,
                        measure.time < mark.rolled_until,
                    )
                )
    if parts:
        _upsert(union_all(*parts) if len(parts) > 1 else parts[0])


def case_opened(case: Case, now: datetime) -> None:
    _record("opened", [case.id], case.submitted_at, now)


def case_moved(case: Case, from_status: str, to_status: str, now: datetime) -> None:
    """Called by ``lifecycle.transition`` after the move, with the case's new
    row in the database (decision, reviewer and reason set in the same UPDATE)."""
    if to_status in m.DECIDED:
        _record("decided", [case.id], case.decided_at, now)
    elif to_status == "needs_info":
        _record("asked", [case.id], now, now)
    elif to_status == "expired":
        _record("expired", [case.id], case.closed_at, now)
    elif to_status == "in_review" and case.first_claimed_at == now:
        # Counted on the day the case was submitted, which may be long rolled up.
        _record("claimed", [case.id], case.submitted_at, now)


def cases_expired(case_ids: list[int], now: datetime) -> None:
    _record("expired", case_ids, now, now)


# --- rolling up ------------------------------------------------------------------


def _earliest() -> datetime | None:
    first = db.session.execute(select(func.min(Case.submitted_at))).scalar()
    if isinstance(first, str):  # SQLite hands an aggregate back untyped
        first = datetime.fromisoformat(first)
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first


def _add_span(zone: str, start: datetime, end: datetime) -> None:
    at = start.astimezone(ZoneInfo(zone)).date()
    parts = [m.measure_select(measure, zone, at, measure.time >= start, measure.time < end) for measure in m.measures()]
    _upsert(union_all(*parts))


def take_turn() -> None:
    """Wait for a roll-up or rebuild under way to commit, and hold the next off
    until this unit ends. A unit that changes cases and then rebuilds takes its
    turn before the changes: their hooks lock the marks, and a job holding the
    turn while it waits on those marks would wait on it in return."""
    one_at_a_time(ROLLING_UP)


def roll_up(now: datetime) -> dict:
    """Add every event between each zone's mark and ``now − SETTLE`` to the
    rollups and move the mark. A zone without a mark starts at the midnight
    (of the zone) before the first case. Returns the seconds rolled up per zone.

    Runs after any other roll-up or rebuild has committed, so it finds the marks
    that one made instead of making them again."""
    take_turn()
    until = now - SETTLE
    found = marks(lock="update")
    starts = _StartOfTime(until)
    rolled = {}
    for zone in zones():
        mark = found.get(zone)
        if mark is None:
            first = starts.of(zone)
            mark = ReportRollupMark(zone=zone, rolled_from=first, rolled_until=first)
            db.session.add(mark)
        start = mark.rolled_until
        if until <= start:
            rolled[zone] = 0
            continue
        _add_span(zone, start, until)
        mark.rolled_until = until
        rolled[zone] = int((until - start).total_seconds())
    db.session.flush()
    return {"seconds_rolled_up": rolled}


def rebuild(now: datetime) -> dict:
    """Forget every rollup and roll everything up again from the first case.

    Waits for a roll-up under way to commit first: otherwise the rows it is
    adding would escape the delete and be counted again. The marks are locked
    before the delete for the same reason, against a case's hook adding its
    share beside it."""
    take_turn()
    found = marks(lock="update")
    db.session.execute(delete(ReportRollup))
    db.session.execute(delete(ReportRollupMark).where(ReportRollupMark.zone.not_in(zones())))
    # The kept marks are moved back, not deleted and made again: a case's hook
    # waiting on one then reads it as the rebuild left it and adds its share
    # (which the rebuild could not see), where a deleted row would leave it
    # finding no mark and its share would be lost.
    starts = _StartOfTime(now - SETTLE)
    for zone, mark in found.items():
        mark.rolled_from = mark.rolled_until = starts.of(zone)
    return roll_up(now)


class _StartOfTime:
    """Where a zone's rollups begin: the midnight (of the zone) before the
    first case, or ``until`` when that is sooner (no case yet)."""

    def __init__(self, until: datetime):
        self.until = until
        self.earliest = None

    def of(self, zone: str) -> datetime:
        if self.earliest is None:
            self.earliest = _earliest() or self.until
        local = self.earliest.astimezone(ZoneInfo(zone)).date()
        return min(datetime.combine(local, time(), ZoneInfo(zone)).astimezone(UTC), self.until)


# --- reading ---------------------------------------------------------------------


def zone_for(tz: str, days: list[date]) -> str | None:
    """A rollup zone whose calendar days are the viewer's on every day of the range."""
    kept = zones()
    if tz in kept:
        return tz
    viewer = ZoneInfo(tz)
    for name in kept:
        zone = ZoneInfo(name)
        if all(
            zone.utcoffset(datetime.combine(d, time())) == viewer.utcoffset(datetime.combine(d, time()))
            for d in days + [days[-1] + timedelta(days=1)]
        ):
            return name
    return None


def read(zone: str, days: list[str]) -> tuple[list, list]:
    """(per-day rows of the daily measures, range totals of the others) for ``days``."""
    if not days:
        return [], []
    R = ReportRollup
    daily = db.session.execute(
        select(R.day, R.measure, R.reviewer_id, R.key, R.n).where(
            R.zone == zone, R.day.in_(days), R.measure.in_(m.DAILY)
        )
    ).all()
    value = case((R.measure.in_(m.LARGEST), func.max(R.n)), else_=func.sum(R.n))
    totals = db.session.execute(
        select(R.measure, R.reviewer_id, R.key, value.label("n"))
        .where(R.zone == zone, R.day.in_(days), R.measure.not_in(m.DAILY))
        .group_by(R.measure, R.reviewer_id, R.key)
    ).all()
    return daily, totals


def live(tz: str, at: date, spans: list[tuple[datetime, datetime]]) -> list:
    """(day, measure, reviewer_id, key, n) rows computed from the cases for the given UTC spans."""
    if not spans:
        return []
    parts = [m.measure_select(measure, tz, at, m.within_spans(measure.time, spans)) for measure in m.measures()]
    return [(row.day, row.measure, row.reviewer_id, row.key, row.n) for row in db.session.execute(union_all(*parts))]
