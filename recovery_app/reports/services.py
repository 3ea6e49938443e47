"""The managers' figures: what is open now, whether the 12-hour promise held
over a date range, how long decisions take, volume, backlog by age, each
reviewer's work, and how many reviewers it takes (Erlang C).

Every figure is an aggregate computed by the database (a fixed number of
statements, whatever the number of cases). Durations are on the SLA clock:
wall time minus the ``needs_info`` pauses. Percentiles use the nearest-rank
definition (the value at rank ⌈p·n⌉ of the sorted values), the same on
SQLite and PostgreSQL.

Days are the viewer's calendar days. PostgreSQL uses the viewer's time zone
rules; SQLite applies the zone's offset at the start of the range (exact for
zones without daylight saving time, such as Asia/Tokyo and UTC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, distinct, func, or_, select, type_coerce

from ..case_labels import REJECTION_REASON_LABELS, STATUS_LABELS
from .. import audit, lifecycle
from ..auth.sessions import bump_epoch
from ..domain import DomainError
from ..extensions import db
from ..models import Case, Decision, OutboxMessage, User
from ..notify import outbox_counts
from ..models.base import UTCDateTime
from ..models.cases import CLOCK_RUNNING_STATUSES, OPEN_STATUSES
from ..models.users import STAFF_ROLES

DEFAULT_DAYS = 14
SERVICE_TARGET = 0.95
BACKLOG_BUCKETS = (0, 3, 6, 9, 12, 24, 48)  # hours on the clock
DECIDED = ("approved", "rejected")
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


def parse_range(start_text: str | None, end_text: str | None, *, today: date, tz: str,
                max_days: int = 366) -> DateRange:
    """A date range from the form; both empty means the last 14 days to today."""
    start_text, end_text = (start_text or "").strip(), (end_text or "").strip()
    try:
        end = date.fromisoformat(end_text) if end_text else today
        start = date.fromisoformat(start_text) if start_text else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise ReportError(_l("Dates must be written as year-month-day, for example 2026-03-02.")) from None
    if end < start:
        raise ReportError(_l("The end date is before the start date."))
    if (end - start).days + 1 > max_days:
        raise ReportError(_l("A report can cover at most %(days)s days."), days=max_days)
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        tz = "UTC"
    return DateRange(start, end, tz)


# --- SQL helpers: the same results on SQLite and PostgreSQL ---------------------------

def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def seconds_between(later, earlier):
    if _postgres():
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def day_of(column, rng: DateRange):
    """The viewer's calendar day of a UTC time, as 'YYYY-MM-DD'."""
    if _postgres():
        return func.to_char(func.timezone(rng.tz, column), "YYYY-MM-DD")
    offset = rng.zone.utcoffset(datetime.combine(rng.start, time()))
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def percentiles(value, *conditions, points=(50, 90, 99), group=None) -> dict:
    """Nearest-rank percentiles (and the maximum, as 100) of ``value`` over the
    rows meeting ``conditions``, per ``group`` if given: one statement.

    PostgreSQL's ``percentile_disc`` is the nearest-rank percentile (the first
    value whose cumulative share reaches p) in one aggregate pass; SQLite has
    no ordered-set aggregates, so there the rows are ranked with window
    functions and the wanted ranks ⌈p·n⌉ picked out."""
    if _postgres():
        columns = [func.count().label("n"), func.max(value).label("p100")] + [
            func.percentile_disc(p / 100).within_group(value).label(f"p{p}") for p in points]
        query = select(*columns, *([group.label("g")] if group is not None else [])).where(*conditions)
        if group is not None:
            query = query.group_by(group)
        result: dict = {}
        for row in db.session.execute(query):
            found = {"n": row.n}
            if row.n:
                found.update({p: float(getattr(row, f"p{p}")) for p in points})
                found[100] = float(row.p100)
            result[row.g if group is not None else None] = found
        return result if group is not None else result.get(None, {"n": 0})
    over = {"order_by": value} | ({"partition_by": group} if group is not None else {})
    count_over = {"partition_by": group} if group is not None else {}
    ranked = select(
        value.label("v"),
        func.row_number().over(**over).label("rn"),
        func.count().over(**count_over).label("n"),
        *( [group.label("g")] if group is not None else [] ),
    ).where(*conditions).subquery()
    wanted = [ranked.c.rn == (p * ranked.c.n + 99) // 100 for p in points] + [ranked.c.rn == ranked.c.n]
    columns = [ranked.c.rn, ranked.c.n, ranked.c.v] + ([ranked.c.g] if group is not None else [])
    result: dict = {}
    for row in db.session.execute(select(*columns).where(or_(*wanted))):
        key = row.g if group is not None else None
        found = result.setdefault(key, {"n": row.n})
        for p in points:
            if row.rn == (p * row.n + 99) // 100:
                found[p] = float(row.v)
        if row.rn == row.n:
            found[100] = float(row.v)
    return result if group is not None else result.get(None, {"n": 0})


def clock_at_decision():
    """Seconds on the SLA clock from submission to decision (pauses excluded)."""
    return seconds_between(Case.decided_at, Case.clock_started_at) - Case.paused_seconds


def handling_seconds():
    """Seconds on the clock from the first claim to the decision. A case only
    pauses after it was claimed, so every pause falls inside this span."""
    return seconds_between(Case.decided_at, Case.first_claimed_at) - Case.paused_seconds


# --- the staffing model ---------------------------------------------------------

def erlang_c(servers: int, load: float) -> float:
    """Probability that an arriving case has to wait (M/M/c, offered load in Erlangs)."""
    if servers <= load:
        return 1.0
    blocking = 1.0  # Erlang B, by the stable recurrence
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return servers * blocking / (servers - load * (1 - blocking))


def reviewers_needed(arrivals_per_hour: float, handling_hours: float, sla_hours: float,
                     target: float = SERVICE_TARGET, limit: int = 1000) -> int | None:
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
    waiting_count: int


def _snapshot(now: datetime) -> dict:
    """Counted from ``due_at`` at ``now`` rather than from the sweep's flags, so
    the page is right even between two sweeps."""
    running = Case.status.in_(CLOCK_RUNNING_STATUSES)
    past_due = and_(running, Case.due_at <= now)
    row = db.session.execute(
        select(
            func.count().label("open"),
            func.count(case((Case.status == "submitted", 1))).label("unclaimed"),
            func.count(case((and_(running, Case.due_at > now, Case.due_at <= now + lifecycle.at_risk_margin()), 1))).label("at_risk"),
            func.count(case((or_(Case.breached_at.is_not(None), past_due), 1))).label("breached"),
            func.count(case((Case.status == "awaiting_second_approval", 1))).label("second_approval"),
            func.count(case((Case.status == "needs_info", 1))).label("needs_info"),
            type_coerce(func.min(case((running, Case.due_at))), UTCDateTime).label("earliest_due"),
        ).where(Case.status.in_(OPEN_STATUSES))
    ).one()
    oldest = None
    if row.earliest_due is not None:
        oldest = (now - row.earliest_due + lifecycle.sla()).total_seconds()
    return {"open": row.open, "unclaimed": row.unclaimed, "at_risk": row.at_risk, "breached": row.breached,
            "second_approval": row.second_approval, "needs_info": row.needs_info, "oldest_seconds": oldest}


def _by_day(rng: DateRange, column, *conditions, **aggregates) -> dict[str, dict]:
    day = day_of(column, rng).label("day")
    query = select(day, *[expr.label(name) for name, expr in aggregates.items()]) \
        .where(rng.contains(column), *conditions).group_by(day)
    return {row.day: row._asdict() for row in db.session.execute(query)}


def _daily(rng: DateRange) -> Table:
    within = Case.decided_at <= Case.due_at
    decided = _by_day(rng, Case.decided_at, Case.status.in_(DECIDED),
                      decided=func.count(),
                      within=func.count(case((within, 1))),
                      approved=func.count(case((Case.status == "approved", 1))),
                      rejected=func.count(case((Case.status == "rejected", 1))),
                      reviewers=func.count(distinct(Case.decided_by_id)))
    opened = _by_day(rng, Case.submitted_at, opened=func.count())
    asked = _by_day(rng, Decision.created_at, Decision.action == "request_info", asked=func.count())
    expired = _by_day(rng, Case.closed_at, Case.status == "expired", expired=func.count())
    table = Table("daily", _l("Per day"), [
        (_l("Day"), "day"), (_l("Opened"), "int"), (_l("Decided"), "int"), (_l("Decided within SLA"), "int"),
        (_l("SLA attainment"), "share"), (_l("Approved"), "int"), (_l("Rejected"), "int"),
        (_l("Asked for new documents"), "int"), (_l("Expired"), "int"), (_l("Reviewers who decided"), "int"),
    ])
    for day in rng.days:
        key = day.isoformat()
        d = decided.get(key, {})
        count = d.get("decided", 0)
        table.rows.append([
            key, opened.get(key, {}).get("opened", 0), count, d.get("within", 0),
            (d.get("within", 0) / count) if count else None, d.get("approved", 0), d.get("rejected", 0),
            asked.get(key, {}).get("asked", 0), expired.get(key, {}).get("expired", 0), d.get("reviewers", 0),
        ])
    return table


def _backlog(now: datetime) -> Table:
    """Cases waiting on us, by hours on the clock. Hours on the clock of a running
    case are SLA − (due − now), so each bucket is a plain range on ``due_at``."""
    sla = lifecycle.sla()
    edges = list(BACKLOG_BUCKETS)
    counts = []
    for low, high in zip(edges, edges[1:] + [None]):
        condition = Case.due_at <= now + sla - timedelta(hours=low)
        if high is not None:
            condition = and_(condition, Case.due_at > now + sla - timedelta(hours=high))
        counts.append(func.count(case((condition, 1))))
    row = db.session.execute(select(*counts).where(Case.status.in_(CLOCK_RUNNING_STATUSES))).one()
    table = Table("backlog", _l("Backlog by hours on the clock"), [(_l("Hours on the clock"), "text"), (_l("Cases"), "int")])
    for (low, high), value in zip(zip(edges, edges[1:] + [None]), row):
        table.rows.append([f"{low}–{high}" if high is not None else f"{low}+", value])
    return table


def _reasons(rng: DateRange) -> Table:
    rows = db.session.execute(
        select(Case.reason_code, func.count()).where(Case.status == "rejected", rng.contains(Case.decided_at))
        .group_by(Case.reason_code).order_by(func.count().desc(), Case.reason_code)
    ).all()
    table = Table("reasons", _l("Rejections by reason"), [(_l("Reason"), "reason"), (_l("Cases"), "int")])
    table.rows = [[reason or "other", count] for reason, count in rows]
    return table


def _reviewers(rng: DateRange) -> Table:
    decided = and_(Case.status.in_(DECIDED), rng.contains(Case.decided_at), Case.decided_by_id.is_not(None))
    counts = {row.uid: row for row in db.session.execute(
        select(Case.decided_by_id.label("uid"), func.count().label("decided"),
               func.count(case((Case.status == "approved", 1))).label("approved"))
        .where(decided).group_by(Case.decided_by_id))}
    medians = percentiles(handling_seconds(), decided, Case.first_claimed_at.is_not(None),
                          points=(50,), group=Case.decided_by_id)
    breaches = dict(db.session.execute(
        select(Case.breached_held_by_id, func.count())
        .where(Case.breached_held_by_id.is_not(None), rng.contains(Case.breached_at))
        .group_by(Case.breached_held_by_id)).all())
    ids = set(counts) | set(breaches)
    people = {user.id: user for user in db.session.execute(select(User).where(User.id.in_(ids))).scalars()} if ids else {}
    table = Table("reviewers", _l("Per reviewer"), [
        (_l("Reviewer"), "text"), (_l("Decided"), "int"), (_l("Approval share"), "share"),
        (_l("Median handling time"), "seconds"), (_l("Breaches while held"), "int"),
    ])
    for uid in sorted(ids, key=lambda i: (-(counts[i].decided if i in counts else 0), i)):
        person = people.get(uid)
        row = counts.get(uid)
        table.rows.append([
            (person.display_name or person.email) if person else f"#{uid}",
            row.decided if row else 0,
            (row.approved / row.decided) if row and row.decided else None,
            medians.get(uid, {}).get(50),
            breaches.get(uid, 0),
        ])
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
    decided = and_(Case.status.in_(DECIDED), rng.contains(Case.decided_at))
    decision_times = percentiles(clock_at_decision(), decided)
    first_claim = percentiles(seconds_between(Case.first_claimed_at, Case.submitted_at),
                              rng.contains(Case.submitted_at), Case.first_claimed_at.is_not(None), points=(50, 90))
    handling = percentiles(handling_seconds(), decided, Case.first_claimed_at.is_not(None), points=(50,))
    within = db.session.execute(select(func.count(case((Case.decided_at <= Case.due_at, 1)))).where(decided)).scalar()
    decision_times["within"] = within
    daily = _daily(rng)
    opened = sum(row[1] for row in daily.rows)
    staffing = _staffing(rng, opened, handling.get(50), daily)
    times = Table("decision_times", _l("Time to decision and to first claim"), [
        (_l("Measure"), "text"), (_l("Cases"), "int"), (_l("Median"), "seconds"), (_l("90th percentile"), "seconds"),
        (_l("99th percentile"), "seconds"), (_l("Longest"), "seconds"),
    ])
    times.rows = [
        [_l("Time to decision (on the clock)"), decision_times["n"], decision_times.get(50), decision_times.get(90),
         decision_times.get(99), decision_times.get(100)],
        [_l("Time to first claim"), first_claim["n"], first_claim.get(50), first_claim.get(90), None,
         first_claim.get(100)],
    ]
    snapshot = _snapshot(now)
    now_table = Table("now", _l("Now"), [(_l("Measure"), "text"), (_l("Value"), "text")])
    now_table.rows = [
        [_l("Open cases"), snapshot["open"]], [_l("Unclaimed"), snapshot["unclaimed"]],
        [_l("At risk"), snapshot["at_risk"]], [_l("Breached, still open"), snapshot["breached"]],
        [_l("Awaiting second approval"), snapshot["second_approval"]],
        [_l("Waiting on the seller"), snapshot["needs_info"]],
        [_l("Oldest waiting (hours on the clock)"),
         None if snapshot["oldest_seconds"] is None else round(snapshot["oldest_seconds"] / 3600, 2)],
    ]
    staffing_table = Table("staffing", _l("Staffing"), [(_l("Measure"), "text"), (_l("Value"), "text")])
    staffing_table.rows = [
        [_l("Cases opened per day (average)"), round(staffing["arrivals_per_day"], 2)],
        [_l("Median handling time (hours)"),
         None if staffing["handling_seconds"] is None else round(staffing["handling_seconds"] / 3600, 2)],
        [_l("Offered load (reviewers busy on average)"), round(staffing["load"], 2)],
        [_l("Reviewers needed on duty (Erlang C, 95% within the SLA)"), staffing["needed"]],
        [_l("Reviewers who decided cases per day (average)"),
         None if staffing["actual_average"] is None else round(staffing["actual_average"], 1)],
    ]
    escalations = db.session.execute(
        select(Case.reference, Case.due_at, Case.breached_at, Case.status, User.display_name, User.email)
        .outerjoin(User, User.id == Case.claimed_by_id)
        .where(Case.status.in_(OPEN_STATUSES), Case.breached_at.is_not(None))
        .order_by(Case.due_at).limit(escalation_limit)
    ).all()
    outbox = outbox_counts()
    failed_count = outbox["failed"]
    failed_messages = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.id.desc()).limit(failed_limit)
    ).scalars().all() if failed_count else []
    tables = {t.name: t for t in (now_table, daily, times, _reasons(rng), _backlog(now), _reviewers(rng), staffing_table)}
    return Report(rng, now, snapshot, decision_times, first_claim, staffing, tables, escalations,
                  failed_messages, failed_count, outbox["pending"])


# --- staff roles ----------------------------------------------------------------

class StaffError(ReportError):
    pass


def staff_list() -> list[User]:
    return list(db.session.execute(
        select(User).where(User.role.in_(STAFF_ROLES)).order_by(User.role, User.display_name, User.email)
    ).scalars())


def change_role(manager: User, user_id: int, role: str, *, now: datetime, address: str | None = None,
                browser: str | None = None) -> User:
    """A manager moves a staff member between reviewer and manager. Their
    sessions end (the new rights apply from their next sign-in); audited."""
    if role not in STAFF_ROLES:
        raise StaffError(_l("Choose reviewer or manager."))
    user = db.session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        raise StaffError(_l("That person is not on the staff list."))
    if user.id == manager.id:
        raise StaffError(_l("You cannot change your own role; ask another manager."))
    if user.role == role:
        raise StaffError(_l("%(name)s already has that role."), name=user.display_name or user.email)
    previous = user.role
    user.role = role
    bump_epoch(user)
    db.session.flush()
    audit.record("user.role_changed", now=now, actor=manager, subject_type="user", subject_id=user.id,
                 details={"from": previous, "to": role}, address=address, browser=browser)
    return user
