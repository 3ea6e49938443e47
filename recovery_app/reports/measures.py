"""What the managers' reports count, written once as SQL: each measure is a
count (or a largest value) grouped by calendar day, reviewer and key.

The same statements fill the daily rollups from the cases, add one case's
share to them when it is decided (see ``rollups``), and compute the days a
report cannot take from the rollups (today). So a rollup always equals a
recomputation from the cases.

Durations are on the SLA clock (wall time minus the ``needs_info`` pauses),
counted in whole seconds and kept as histograms with fixed buckets: 1 minute
wide below 1 hour, 5 minutes to 6 hours, 15 minutes to 48 hours, 1 hour to 30
days, then one open bucket. A percentile read from them is the middle of its
bucket (never more than the longest time, which is kept exactly), so it is
within half a bucket of the exact nearest-rank value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, String, case, cast, func, literal, or_, select, true

from ..extensions import db
from ..models import Case, Decision

DECIDED = ("approved", "rejected")
# A request for new documents: what the review writes, and what older data wrote.
ASKED_ACTIONS = ("needs_info", "request_info")

# (first second, bucket width in seconds, first bucket index) of each tier.
TIERS = ((0, 60, 0), (3600, 300, 60), (21600, 900, 120), (172800, 3600, 288))
OPEN_FROM = 2592000  # 30 days: everything longer falls in one bucket
OPEN_BUCKET = 288 + (OPEN_FROM - 172800) // 3600


# --- buckets --------------------------------------------------------------------


def bucket_of(seconds: float) -> int:
    whole = int(max(seconds, 0) + 0.5)
    if whole >= OPEN_FROM:
        return OPEN_BUCKET
    for first, width, index in reversed(TIERS):
        if whole >= first:
            return index + (whole - first) // width
    raise AssertionError("unreachable")


def bucket_bounds(bucket: int) -> tuple[int, int | None]:
    """The seconds a bucket holds: [low, high), high None for the open bucket."""
    if bucket >= OPEN_BUCKET:
        return OPEN_FROM, None
    for first, width, index in reversed(TIERS):
        if bucket >= index:
            low = first + (bucket - index) * width
            return low, low + width
    raise ValueError(bucket)


def bucket_error(seconds: float) -> float | None:
    """How far a percentile shown for ``seconds`` may be from the exact value."""
    low, high = bucket_bounds(bucket_of(seconds))
    return None if high is None else (high - low) / 2


def percentiles(histogram: dict[int, int], largest: float | None, points=(50, 90, 99)) -> dict:
    """Nearest-rank percentiles (the value at rank ⌈p·n⌉) read from a histogram,
    and the exact longest time as 100."""
    count = sum(histogram.values())
    result: dict = {"n": count}
    if not count:
        return result
    ordered = sorted(histogram.items())
    for point in points:
        rank = max(1, (point * count + 99) // 100)
        seen = 0
        for bucket, n in ordered:
            seen += n
            if seen >= rank:
                low, high = bucket_bounds(bucket)
                middle = float(largest) if high is None else (low + high) / 2
                result[point] = min(middle, float(largest)) if largest is not None else middle
                break
    result[100] = float(largest) if largest is not None else None
    return result


# --- SQL that reads the same on SQLite and PostgreSQL -------------------------------


def postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def seconds_between(later, earlier):
    if postgres():
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def clock_at_decision():
    """Seconds on the SLA clock from submission to decision (pauses excluded)."""
    return seconds_between(Case.decided_at, Case.clock_started_at) - Case.paused_seconds


def handling_seconds():
    """Seconds on the clock from the first claim to the decision. A case only
    pauses after it was claimed, so every pause falls inside this span."""
    return seconds_between(Case.decided_at, Case.first_claimed_at) - Case.paused_seconds


def first_claim_seconds():
    return seconds_between(Case.first_claimed_at, Case.submitted_at)


def whole_seconds(value):
    """Rounded half up, never below zero: the same integer on both databases."""
    if postgres():
        return cast(func.floor(func.greatest(value, 0) + 0.5), BigInteger)
    return cast(func.max(value, 0) + 0.5, BigInteger)


def bucket(value):
    """``bucket_of`` in SQL (integer division on both databases)."""
    s = whole_seconds(value)
    uppers = [first for first, _, _ in TIERS[1:]] + [OPEN_FROM]
    whens = [
        (s < upper, index + (s - first) // width) for (first, width, index), upper in zip(TIERS, uppers, strict=True)
    ]
    return case(*whens, else_=OPEN_BUCKET)


def day_of(column, zone: str, at: date):
    """The calendar day in ``zone`` of a UTC time, as 'YYYY-MM-DD'. SQLite
    applies the zone's offset on day ``at`` (exact for zones without daylight
    saving time, such as Asia/Tokyo and UTC)."""
    if postgres():
        return func.to_char(func.timezone(zone, column), "YYYY-MM-DD")
    offset = ZoneInfo(zone).utcoffset(datetime.combine(at, time()))
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


# --- the measures ---------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    name: str
    event: str  # what adds to it: opened | claimed | decided | asked | expired
    time: Any  # the column whose day it counts on
    where: tuple
    reviewer: Any = None
    key: Any = None
    largest: Any = None  # keep the largest of this value (whole seconds) instead of counting


# Per-day measures (the daily table); the others are read summed over a range.
DAILY = ("opened", "decided", "within", "by_reviewer", "asked", "expired")
LARGEST = ("first_claim_max", "decision_max")


def measures() -> list[Measure]:
    decided = (Case.status.in_(DECIDED),)
    claimed = (Case.first_claimed_at.is_not(None),)
    return [
        Measure("opened", "opened", Case.submitted_at, ()),
        Measure("first_claim", "claimed", Case.submitted_at, claimed, key=bucket(first_claim_seconds())),
        Measure("first_claim_max", "claimed", Case.submitted_at, claimed, largest=first_claim_seconds()),
        Measure("decided", "decided", Case.decided_at, decided, key=Case.status),
        Measure("within", "decided", Case.decided_at, decided + (Case.decided_at <= Case.due_at,)),
        Measure(
            "by_reviewer",
            "decided",
            Case.decided_at,
            decided + (Case.decided_by_id.is_not(None),),
            reviewer=Case.decided_by_id,
            key=Case.status,
        ),
        Measure(
            "reason",
            "decided",
            Case.decided_at,
            (Case.status == "rejected",),
            key=func.coalesce(Case.reason_code, "other"),
        ),
        Measure("decision_time", "decided", Case.decided_at, decided, key=bucket(clock_at_decision())),
        Measure("decision_max", "decided", Case.decided_at, decided, largest=clock_at_decision()),
        Measure(
            "handling",
            "decided",
            Case.decided_at,
            decided + claimed,
            reviewer=func.coalesce(Case.decided_by_id, 0),
            key=bucket(handling_seconds()),
        ),
        Measure("expired", "expired", Case.closed_at, (Case.status == "expired",)),
        Measure("asked", "asked", Decision.created_at, (Decision.action.in_(ASKED_ACTIONS),)),
    ]


def measure_select(measure: Measure, zone: str, at: date, *conditions):
    """(zone, day, measure, reviewer_id, key, n) rows of one measure."""
    day = day_of(measure.time, zone, at)
    reviewer = measure.reviewer if measure.reviewer is not None else literal(0)
    key = cast(measure.key, String) if measure.key is not None else literal("")
    value = func.max(whole_seconds(measure.largest)) if measure.largest is not None else func.count()
    grouping = [day] + [g for g in (measure.reviewer, measure.key) if g is not None]
    return (
        select(
            literal(zone, String).label("zone"),
            day.label("day"),
            literal(measure.name, String).label("measure"),
            reviewer.label("reviewer_id"),
            key.label("key"),
            cast(value, BigInteger).label("n"),
        )
        .where(true(), *measure.where, *conditions)
        .group_by(*grouping)
    )


def within_spans(column, spans: list[tuple[datetime, datetime]]):
    return or_(*[(column >= start) & (column < end) for start, end in spans])
