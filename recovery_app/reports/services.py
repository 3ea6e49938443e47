"""The managers' figures: what is open now, whether the 12-hour promise held
over a date range, how long decisions take, volume, backlog by age, each
reviewer's work, and how many reviewers it takes (Erlang C).

Figures over a range come from daily rollups up to the rollups' mark, a few
minutes before the scheduler's last run (see ``rollups``), and from the cases
after it, with the same statements (``measures``): the work grows with the number of days, not
with the number of decided cases. Durations are on the SLA clock: wall time
minus the ``needs_info`` pauses. Percentiles use the nearest-rank definition
(the value at rank ⌈p·n⌉ of the sorted values), read from histograms with
fixed buckets, so each is within half a bucket of the exact value
(``BUCKET_NOTE``); the longest time is exact.

Days are the viewer's calendar days. Rollups are kept for the zones of
``RECOVERY_REPORT_ROLLUP_ZONES``; a viewer in a zone with other offsets gets
every day computed from the cases. PostgreSQL uses the zone's rules; SQLite
applies the zone's offset at the start of the range (exact for zones without
daylight saving time, such as Asia/Tokyo and UTC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select, type_coerce, union_all

from .. import lifecycle
from ..case_labels import REJECTION_REASON_LABELS
from ..domain import DomainError
from ..extensions import db
from ..models import Case, OutboxMessage, User
from ..models.base import UTCDateTime
from ..models.cases import CLOCK_RUNNING_STATUSES, OPEN_STATUSES
from ..notify import outbox_counts
from . import measures, rollups

DEFAULT_DAYS = 14
SERVICE_TARGET = 0.95
BACKLOG_BUCKETS = (0, 3, 6, 9, 12, 24, 48)  # hours on the clock
DECIDED = measures.DECIDED
BUCKET_NOTE = _l(
    "Medians and percentiles are read from fixed buckets (1 minute wide below 1 hour, 5 minutes up to 6 hours, "
    "15 minutes up to 48 hours, 1 hour beyond): each is within half a bucket of the exact value, that is within "
    "30 seconds, 2.5 minutes, 7.5 minutes or 30 minutes. The longest time is exact."
)
REASON_LABELS = REJECTION_REASON_LABELS


class ReportError(DomainError):
    """Bad input for a report (a date range); the message is for the manager."""


# --- the date range ------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, time(), self.zone).astimezone(ZoneInfo("UTC"))

    @property
    def end_utc(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time(), self.zone).astimezone(ZoneInfo("UTC"))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def contains(self, column):
        return and_(column >= self.start_utc, column < self.end_utc)


# The days a report may cover: every case of this product falls well inside,
# and the ends stay clear of the calendar's limits once moved between time zones.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def parse_range(
    start_text: str | None, end_text: str | None, *, today: date, tz: str, max_days: int = 366
) -> DateRange:
    """A date range from the form; both empty means the last 14 days to today."""
    start_text, end_text = (start_text or "").strip(), (end_text or "").strip()
    try:
        end = date.fromisoformat(end_text) if end_text else today
        start = date.fromisoformat(start_text) if start_text else None
    except ValueError:
        raise ReportError(_l("Dates must be written as year-month-day, for example 2026-03-02.")) from None
    if not all(FIRST_DAY <= day <= LAST_DAY for day in (start or end, end)):  # far dates overflow in UTC
        raise ReportError(
            _l("Reports cover days from %(first)s to %(last)s."), first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat()
        )
    if start is None:
        start = max(end - timedelta(days=DEFAULT_DAYS - 1), FIRST_DAY)
    if end < start:
        raise ReportError(_l("The end date is before the start date."))
    if (end - start).days + 1 > max_days:
        raise ReportError(_l("A report can cover at most %(days)s days."), days=max_days)
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        tz = "UTC"
    return DateRange(start, end, tz)


# --- the staffing model ---------------------------------------------------------


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arriving case has to wait (M/M/c, offered load in Erlangs)."""
    if servers <= load:
        return 1.0
    blocking = 1.0  # Erlang B, by the stable recurrence
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return servers * blocking / (servers - load * (1 - blocking))


def reviewers_needed(
    arrivals_per_hour: float, handling_hours: float, sla_hours: float, target: float = SERVICE_TARGET, limit: int = 1000
) -> int | None:
    """The fewest reviewers on duty so that ``target`` of cases wait at most
    (SLA − handling time) before a reviewer starts on them; None when the
    handling time alone exceeds the SLA or nothing arrived."""
    if arrivals_per_hour <= 0 or handling_hours <= 0:
        return None
    budget = sla_hours - handling_hours
    if budget < 0:
        return None
    load = arrivals_per_hour * handling_hours
    for servers in range(max(1, math.floor(load) + 1), limit + 1):
        waits_longer = erlang_c(servers, load) * math.exp(-(servers / handling_hours - arrivals_per_hour) * budget)
        if 1 - waits_longer >= target:
            return servers
    return None


# --- the report -----------------------------------------------------------------


@dataclass
class Table:
    """One table of the dashboard; rows hold raw values (seconds, shares 0–1)."""

    name: str
    title: object
    columns: list  # (label, kind) with kind in text | int | share | seconds | day
    rows: list = field(default_factory=list)


@dataclass
class Report:
    range: DateRange
    now: datetime
    snapshot: dict
    decision_times: dict
    first_claim: dict
    staffing: dict
    tables: dict[str, Table]
    escalations: list
    failed_messages: list
    failed_count: int
    waiting_count: int  # messages not sent yet (the failed ones are listed)
    rolled_days: int = 0  # whole days of the range read from the daily rollups
    live_days: int = 0  # days counted from the cases, in part or whole (today)
    rolled_until: datetime | None = None  # the rollups hold every event before this


def open_case_snapshot(now: datetime) -> dict:
    """Counted from ``due_at`` at ``now`` rather than from the sweep's flags, so
    the page is right even between two sweeps."""
    # One indexed probe per open status: with millions of closed cases, SQLite
    # would guess that an IN over four statuses reads most of the table and scan it.
    open_cases = union_all(
        *[select(Case.status, Case.due_at, Case.breached_at).where(Case.status == status) for status in OPEN_STATUSES]
    ).subquery()
    status, due_at = open_cases.c.status, open_cases.c.due_at
    running = status.in_(CLOCK_RUNNING_STATUSES)
    past_due = and_(running, due_at <= now)
    row = db.session.execute(
        select(
            func.count().label("open"),
            func.count(case((status == "submitted", 1))).label("unclaimed"),
            func.count(case((and_(running, due_at > now, due_at <= now + lifecycle.at_risk_margin()), 1))).label(
                "at_risk"
            ),
            func.count(case((or_(open_cases.c.breached_at.is_not(None), past_due), 1))).label("breached"),
            func.count(case((status == "awaiting_second_approval", 1))).label("second_approval"),
            func.count(case((status == "needs_info", 1))).label("needs_info"),
            type_coerce(func.min(case((running, due_at))), UTCDateTime).label("earliest_due"),
        )
    ).one()
    oldest = None
    if row.earliest_due is not None:
        oldest = (now - row.earliest_due + lifecycle.sla()).total_seconds()
    return {
        "open": row.open,
        "unclaimed": row.unclaimed,
        "at_risk": row.at_risk,
        "breached": row.breached,
        "second_approval": row.second_approval,
        "needs_info": row.needs_info,
        "oldest_seconds": oldest,
    }


@dataclass
class Figures:
    """The measures over a range: per day for the daily ones, summed (or the
    largest) over the range for all of them."""

    daily: dict = field(default_factory=dict)  # day -> {(measure, reviewer_id, key): n}
    totals: dict = field(default_factory=dict)  # (measure, reviewer_id, key) -> n
    rolled_days: int = 0
    live_days: int = 0
    rolled_until: datetime | None = None

    def add(self, day, measure: str, reviewer_id: int, key: str, n: int) -> None:
        item = (measure, int(reviewer_id), key)
        if measure in measures.LARGEST:
            self.totals[item] = max(self.totals.get(item, 0), int(n))
        else:
            self.totals[item] = self.totals.get(item, 0) + int(n)
        if day is not None and measure in measures.DAILY:
            cell = self.daily.setdefault(day, {})
            cell[item] = cell.get(item, 0) + int(n)

    def count(self, measure: str, key: str | None = None, day: str | None = None) -> int:
        source = self.totals if day is None else self.daily.get(day, {})
        return sum(n for (name, _, k), n in source.items() if name == measure and (key is None or k == key))

    def largest(self, measure: str) -> int | None:
        return self.totals.get((measure, 0, ""))

    def histogram(self, measure: str, reviewer_id: int | None = None) -> dict[int, int]:
        found: dict[int, int] = {}
        for (name, reviewer, key), n in self.totals.items():
            if name == measure and (reviewer_id is None or reviewer == reviewer_id):
                found[int(key)] = found.get(int(key), 0) + n
        return found


def _figures(rng: DateRange, now: datetime) -> Figures:
    """What the rollups hold (when the viewer's days are a rollup zone's days)
    from the rollups; the rest of the range from the cases."""
    figures = Figures()
    zone = rollups.zone_for(rng.tz, rng.days)
    mark = rollups.marks().get(zone) if zone else None
    rolled: list[str] = []
    spans = [(rng.start_utc, rng.end_utc)]
    if mark is not None:
        # The mark's first instant is a midnight of the zone; its last day's
        # rows hold that day's events up to the mark, the cases the rest.
        day_start = {day: datetime.combine(day, time(), rng.zone).astimezone(ZoneInfo("UTC")) for day in rng.days}
        rolled = [day.isoformat() for day in rng.days if mark.rolled_from <= day_start[day] < mark.rolled_until]
        spans = [
            (begin, finish)
            for begin, finish in (
                (rng.start_utc, min(mark.rolled_from, rng.end_utc)),
                (max(mark.rolled_until, rng.start_utc), rng.end_utc),
            )
            if begin < finish
        ]
        figures.rolled_until = mark.rolled_until if rolled else None
        figures.rolled_days = sum(
            1
            for day in rng.days
            if mark.rolled_from <= day_start[day] and day_start[day] + timedelta(days=1) <= mark.rolled_until
        )
    daily_rows, totals = rollups.read(zone, rolled) if rolled else ([], [])
    for row in daily_rows:
        figures.add(row.day, row.measure, row.reviewer_id, row.key, row.n)
    for row in totals:
        figures.add(None, row.measure, row.reviewer_id, row.key, row.n)
    for row in rollups.live(rng.tz, rng.start, spans):
        figures.add(*row)
    figures.live_days = len(rng.days) - figures.rolled_days
    return figures


def _daily(rng: DateRange, figures: Figures) -> Table:
    table = Table(
        "daily",
        _l("Per day"),
        [
            (_l("Day"), "day"),
            (_l("Opened"), "int"),
            (_l("Decided"), "int"),
            (_l("Decided within SLA"), "int"),
            (_l("SLA attainment"), "share"),
            (_l("Approved"), "int"),
            (_l("Rejected"), "int"),
            (_l("Asked for new documents"), "int"),
            (_l("Expired"), "int"),
            (_l("Reviewers who decided"), "int"),
        ],
    )
    for day in rng.days:
        key = day.isoformat()
        count = figures.count("decided", day=key)
        within = figures.count("within", day=key)
        reviewers = {
            reviewer for (name, reviewer, _), n in figures.daily.get(key, {}).items() if name == "by_reviewer" and n
        }
        table.rows.append(
            [
                key,
                figures.count("opened", day=key),
                count,
                within,
                (within / count) if count else None,
                figures.count("decided", "approved", day=key),
                figures.count("decided", "rejected", day=key),
                figures.count("asked", day=key),
                figures.count("expired", day=key),
                len(reviewers),
            ]
        )
    return table


def _backlog(now: datetime) -> Table:
    """Cases waiting on us, by hours on the clock. Hours on the clock of a running
    case are SLA − (due − now), so each bucket is a plain range on ``due_at``."""
    sla = lifecycle.sla()
    edges = list(BACKLOG_BUCKETS)
    counts = []
    for low, high in zip(edges, edges[1:] + [None], strict=True):
        condition = Case.due_at <= now + sla - timedelta(hours=low)
        if high is not None:
            condition = and_(condition, Case.due_at > now + sla - timedelta(hours=high))
        counts.append(func.count(case((condition, 1))))
    row = db.session.execute(select(*counts).where(Case.status.in_(CLOCK_RUNNING_STATUSES))).one()
    table = Table(
        "backlog", _l("Backlog by hours on the clock"), [(_l("Hours on the clock"), "text"), (_l("Cases"), "int")]
    )
    for (low, high), value in zip(zip(edges, edges[1:] + [None], strict=True), row, strict=True):
        table.rows.append([f"{low}–{high}" if high is not None else f"{low}+", value])
    return table


def _reasons(figures: Figures) -> Table:
    counts = {key: n for (name, _, key), n in figures.totals.items() if name == "reason" and n}
    table = Table("reasons", _l("Rejections by reason"), [(_l("Reason"), "reason"), (_l("Cases"), "int")])
    table.rows = [[reason, count] for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    return table


def _reviewers(rng: DateRange, figures: Figures) -> Table:
    decided: dict[int, int] = {}
    approved: dict[int, int] = {}
    for (name, reviewer, key), n in figures.totals.items():
        if name == "by_reviewer":
            decided[reviewer] = decided.get(reviewer, 0) + n
            if key == "approved":
                approved[reviewer] = approved.get(reviewer, 0) + n
    breaches = dict(
        db.session.execute(
            select(Case.breached_held_by_id, func.count())
            .where(Case.breached_held_by_id.is_not(None), rng.contains(Case.breached_at))
            .group_by(Case.breached_held_by_id)
        ).all()
    )
    ids = {uid for uid, n in decided.items() if n} | set(breaches)
    people = (
        {user.id: user for user in db.session.execute(select(User).where(User.id.in_(ids))).scalars()} if ids else {}
    )
    table = Table(
        "reviewers",
        _l("Per reviewer"),
        [
            (_l("Reviewer"), "text"),
            (_l("Decided"), "int"),
            (_l("Approval share"), "share"),
            (_l("Median handling time"), "seconds"),
            (_l("Breaches while held"), "int"),
        ],
    )
    for uid in sorted(ids, key=lambda i: (-decided.get(i, 0), i)):
        person = people.get(uid)
        count = decided.get(uid, 0)
        median = measures.percentiles(figures.histogram("handling", uid), None, points=(50,)).get(50)
        table.rows.append(
            [
                (person.display_name or person.email) if person else f"#{uid}",
                count,
                (approved.get(uid, 0) / count) if count else None,
                median,
                breaches.get(uid, 0),
            ]
        )
    return table


def _staffing(rng: DateRange, opened: int, handling_median: float | None, daily: Table) -> dict:
    hours = (rng.end_utc - rng.start_utc).total_seconds() / 3600
    arrivals = opened / hours if hours else 0.0
    sla_hours = lifecycle.sla().total_seconds() / 3600
    handling_hours = (handling_median or 0) / 3600
    needed = reviewers_needed(arrivals, handling_hours, sla_hours)
    active_days = [row[-1] for row in daily.rows if row[2]]
    return {
        "arrivals_per_hour": arrivals,
        "arrivals_per_day": arrivals * 24,
        "handling_seconds": handling_median,
        "load": arrivals * handling_hours,
        "needed": needed,
        "target": SERVICE_TARGET,
        "sla_hours": sla_hours,
        "actual_average": (sum(active_days) / len(active_days)) if active_days else None,
        "actual_max": max(active_days) if active_days else None,
    }


def build_report(rng: DateRange, now: datetime, *, escalation_limit: int = 50, failed_limit: int = 20) -> Report:
    figures = _figures(rng, now)
    decision_times = measures.percentiles(figures.histogram("decision_time"), figures.largest("decision_max"))
    first_claim = measures.percentiles(
        figures.histogram("first_claim"), figures.largest("first_claim_max"), points=(50, 90)
    )
    handling = measures.percentiles(figures.histogram("handling"), None, points=(50,))
    decision_times["within"] = figures.count("within")
    daily = _daily(rng, figures)
    opened = sum(row[1] for row in daily.rows)
    staffing = _staffing(rng, opened, handling.get(50), daily)
    times = Table(
        "decision_times",
        _l("Time to decision and to first claim"),
        [
            (_l("Measure"), "text"),
            (_l("Cases"), "int"),
            (_l("Median"), "seconds"),
            (_l("90th percentile"), "seconds"),
            (_l("99th percentile"), "seconds"),
            (_l("Longest"), "seconds"),
        ],
    )
    times.rows = [
        [
            _l("Time to decision (on the clock)"),
            decision_times["n"],
            decision_times.get(50),
            decision_times.get(90),
            decision_times.get(99),
            decision_times.get(100),
        ],
        [
            _l("Time to first claim"),
            first_claim["n"],
            first_claim.get(50),
            first_claim.get(90),
            None,
            first_claim.get(100),
        ],
    ]
    snapshot = open_case_snapshot(now)
    now_table = Table("now", _l("Now"), [(_l("Measure"), "text"), (_l("Value"), "text")])
    now_table.rows = [
        [_l("Open cases"), snapshot["open"]],
        [_l("Unclaimed"), snapshot["unclaimed"]],
        [_l("At risk"), snapshot["at_risk"]],
        [_l("Breached, still open"), snapshot["breached"]],
        [_l("Awaiting second approval"), snapshot["second_approval"]],
        [_l("Waiting on the seller"), snapshot["needs_info"]],
        [
            _l("Oldest waiting (hours on the clock)"),
            None if snapshot["oldest_seconds"] is None else round(snapshot["oldest_seconds"] / 3600, 2),
        ],
    ]
    staffing_table = Table("staffing", _l("Staffing"), [(_l("Measure"), "text"), (_l("Value"), "text")])
    staffing_table.rows = [
        [_l("Cases opened per day (average)"), round(staffing["arrivals_per_day"], 2)],
        [
            _l("Median handling time (hours)"),
            None if staffing["handling_seconds"] is None else round(staffing["handling_seconds"] / 3600, 2),
        ],
        [_l("Offered load (reviewers busy on average)"), round(staffing["load"], 2)],
        [_l("Reviewers needed on duty (Erlang C, 95% within the SLA)"), staffing["needed"]],
        [
            _l("Reviewers who decided cases per day (average)"),
            None if staffing["actual_average"] is None else round(staffing["actual_average"], 1),
        ],
    ]
    escalations = db.session.execute(
        select(Case.reference, Case.due_at, Case.breached_at, Case.status, User.display_name, User.email)
        .outerjoin(User, User.id == Case.claimed_by_id)
        .where(Case.status.in_(OPEN_STATUSES), Case.breached_at.is_not(None))
        .order_by(Case.due_at)
        .limit(escalation_limit)
    ).all()
    outbox = outbox_counts()
    failed_count = outbox["failed"]
    failed_messages = (
        db.session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.status == "failed")
            .order_by(OutboxMessage.id.desc())
            .limit(failed_limit)
        )
        .scalars()
        .all()
        if failed_count
        else []
    )
    tables = {
        t.name: t
        for t in (now_table, daily, times, _reasons(figures), _backlog(now), _reviewers(rng, figures), staffing_table)
    }
    return Report(
        rng,
        now,
        snapshot,
        decision_times,
        first_claim,
        staffing,
        tables,
        escalations,
        failed_messages,
        failed_count,
        outbox["pending"],
        figures.rolled_days,
        figures.live_days,
        figures.rolled_until,
    )
