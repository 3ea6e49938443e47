"""Where a seller's case stands: its place in the reviewers' queue, when a
decision can be expected, and whether the 12-hour promise still holds.

*Place.* The cases ahead are the ones the reviewers' queue lists before this
one: waiting on us (submitted, in review, awaiting a second approval), with an
earlier due time, or the same due time and a lower id (the queue's order).
A case waiting on its seller for new documents is not ahead of anyone: nobody
works on it until its seller answers.

*Estimate.* The staffing report's model (``reports.services.erlang_c``: M/M/c,
each reviewer on duty a server), fed with

* the arrival rate: cases opened in the last 24 hours, per hour;
* the handling time: the median, on the SLA clock, from the first claim to the
  decision, of the last ``HANDLING_SAMPLE`` cases decided in the last 14 days
  (the staffing report's handling time, over recent decisions);
* the reviewers on duty: the staff who worked on a case in the last hour
  (hold a case they touched in that hour, or decided one in it).

While every reviewer on duty is busy with a case ahead, one of them becomes
free every handling time / reviewers on duty, on average, and takes the next
case in order; so with ``ahead`` cases before it and ``c`` reviewers, a case
waits (ahead − c + 1) of those intervals. With fewer cases ahead than
reviewers, a reviewer is free unless all of them are busy with other work,
which happens with the Erlang C probability for today's load; then the case
waits one interval. The decision is expected one handling time after a
reviewer starts on it.

*Cost.* The page asks again every ``RECOVERY_STANDING_POLL_SECONDS``; each
update is one statement: the seller's case and, as correlated counts over the
(status, due_at) index, the cases ahead of it (``read``). The estimate's
inputs are computed in three statements at most once a minute per process
(``cached_inputs``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_timedelta
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select, union
from sqlalchemy.orm import aliased

from .. import lifecycle
from ..case_labels import STATUS_LABELS
from ..extensions import db
from ..models import Case
from ..models.cases import CLOCK_RUNNING_STATUSES
from ..reports import measures
from ..reports.services import erlang_c
from ..review.services import HELD_STATUSES
from .services import in_zone

ON_DUTY_WINDOW = timedelta(hours=1)
ARRIVALS_WINDOW = timedelta(hours=24)
HANDLING_WINDOW = timedelta(days=14)
HANDLING_SAMPLE = 200
INPUTS_TTL = timedelta(minutes=1)
ROUND_TO = timedelta(minutes=5)
_CACHE_KEY = "recovery_standing_inputs"


# --- the estimate's inputs ---------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    arrivals_per_hour: float
    handling_seconds: float | None  # None: no recent decision to learn from
    on_duty: int
    computed_at: datetime


def estimate_inputs(now: datetime) -> Inputs:
    """The model's inputs at ``now``, in three statements, each an indexed range."""
    arrivals = db.session.execute(
        select(func.count())
        .select_from(Case)
        .where(Case.submitted_at > now - ARRIVALS_WINDOW, Case.submitted_at <= now)
    ).scalar_one()
    recent = (
        db.session.execute(
            select(measures.handling_seconds())
            .where(
                Case.decided_at > now - HANDLING_WINDOW,
                Case.decided_at <= now,
                Case.status.in_(measures.DECIDED),
                Case.first_claimed_at.is_not(None),
            )
            .order_by(Case.decided_at.desc())
            .limit(HANDLING_SAMPLE)
        )
        .scalars()
        .all()
    )
    held = select(Case.claimed_by_id.label("staff_id")).where(
        Case.status.in_(HELD_STATUSES), Case.claimed_by_id.is_not(None), Case.last_activity_at > now - ON_DUTY_WINDOW
    )
    decided = select(Case.decided_by_id.label("staff_id")).where(
        Case.decided_at > now - ON_DUTY_WINDOW, Case.decided_at <= now, Case.decided_by_id.is_not(None)
    )
    on_duty = db.session.execute(select(func.count()).select_from(union(held, decided).subquery())).scalar_one()
    handling = statistics.median(max(float(s), 0.0) for s in recent) if recent else None
    return Inputs(arrivals / (ARRIVALS_WINDOW.total_seconds() / 3600), handling, on_duty, now)


def cached_inputs(now: datetime) -> Inputs:
    """The inputs, computed again when the ones this process holds are a minute old."""
    held: Inputs | None = current_app.extensions.get(_CACHE_KEY)
    if held is None or not (timedelta(0) <= now - held.computed_at < INPUTS_TTL):
        held = current_app.extensions[_CACHE_KEY] = estimate_inputs(now)
    return held


def forget_inputs() -> None:
    current_app.extensions.pop(_CACHE_KEY, None)


# --- the model ---------------------------------------------------------------------


def expected_wait(ahead: int, on_duty: int, handling_seconds: float, arrivals_per_hour: float) -> timedelta:
    """How long, on average, until a reviewer starts on a case with ``ahead``
    cases before it (see the module's docstring)."""
    interval = handling_seconds / on_duty
    if ahead >= on_duty:
        return timedelta(seconds=(ahead - on_duty + 1) * interval)
    load = arrivals_per_hour * handling_seconds / 3600
    return timedelta(seconds=erlang_c(on_duty, load) * interval)


# --- one update ----------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    reference: str
    status: str
    due_at: datetime
    claimed_at: datetime | None
    ahead: int


def _ahead():
    """The cases before the outer ``Case`` in the reviewers' order, counted per
    status: each count is a range of the (status, due_at) index. Ties on the
    due time are counted apart, so the common count reads the index alone."""
    other = aliased(Case)
    counts = []
    for status in CLOCK_RUNNING_STATUSES:
        counts.append(
            select(func.count())
            .select_from(other)
            .where(other.status == status, other.due_at < Case.due_at)
            .correlate(Case)
            .scalar_subquery()
        )
        counts.append(
            select(func.count())
            .select_from(other)
            .where(other.status == status, other.due_at == Case.due_at, other.id < Case.id)
            .correlate(Case)
            .scalar_subquery()
        )
    total = counts[0]
    for count in counts[1:]:
        total = total + count
    return total


def read(user_id: int, reference: str) -> Standing | None:
    """The case ``reference`` of ``user_id`` and its place, in one statement
    (None when the case is not theirs)."""
    row = db.session.execute(
        select(Case.reference, Case.status, Case.due_at, Case.claimed_at, _ahead().label("ahead")).where(
            Case.reference == reference, Case.user_id == user_id
        )
    ).one_or_none()
    if row is None:
        return None
    return Standing(row.reference, row.status, row.due_at, row.claimed_at, int(row.ahead))


# --- what the seller reads -------------------------------------------------------------


def _round_up(moment: datetime) -> datetime:
    step = ROUND_TO.total_seconds()
    seconds = moment.timestamp()
    return moment + timedelta(seconds=math.ceil(seconds / step) * step - seconds)


def expected_decision(standing: Standing, inputs: Inputs, now: datetime) -> datetime | None:
    """When the decision can be expected, or None when the model has nothing to go on."""
    if inputs.handling_seconds is None:
        return None
    handling = timedelta(seconds=inputs.handling_seconds)
    if standing.status == "in_review" and standing.claimed_at is not None:
        expected = standing.claimed_at + handling
        return _round_up(expected) if expected > now else None
    if standing.status != "submitted" or inputs.on_duty < 1:
        return None
    wait = expected_wait(standing.ahead, inputs.on_duty, inputs.handling_seconds, inputs.arrivals_per_hour)
    return _round_up(now + wait + handling)


def describe(standing: Standing, inputs: Inputs | None, now: datetime, *, time_zone: str | None, locale: str) -> dict:
    """Everything the page shows about where the case stands, worded for the
    seller: the same texts for the first render and for each update."""
    waiting = standing.status in CLOCK_RUNNING_STATUSES
    data: dict = {
        "status": standing.status,
        "status_label": str(STATUS_LABELS.get(standing.status, standing.status)),
        "reload": not waiting,
        "state": "closed",
        "ahead": None,
        "place": None,
        "reviewer": None,
        "estimate": None,
        "basis": None,
        "promise": None,
    }
    if not waiting or inputs is None:
        return data
    hours = current_app.config["RECOVERY_SLA_HOURS"]
    due = in_zone(standing.due_at, time_zone, locale)
    if standing.status == "submitted":
        data["ahead"] = standing.ahead
        data["place"] = (
            _("No case is ahead of yours: yours is next.")
            if standing.ahead == 0
            else ngettext("%(num)d case is ahead of yours.", "%(num)d cases are ahead of yours.", standing.ahead)
        )
    elif standing.status == "in_review" and standing.claimed_at is not None:
        data["reviewer"] = _(
            "A reviewer started on your case at %(time)s.", time=in_zone(standing.claimed_at, time_zone, locale)
        )
    else:
        data["reviewer"] = _("Reviewers are working on your case.")

    expected = expected_decision(standing, inputs, now)
    if expected is not None:
        data["estimate"] = _(
            "Expected decision: around %(time)s (%(relative)s).",
            time=in_zone(expected, time_zone, locale),
            relative=format_timedelta(expected - now, add_direction=True, locale=locale),
        )
        if standing.status == "submitted":
            data["basis"] = ngettext(
                "An estimate from the cases ahead of yours, the cases opened today, recent handling times and the "
                "%(num)d reviewer on duty (who worked on a case in the last hour). It changes as the queue moves.",
                "An estimate from the cases ahead of yours, the cases opened today, recent handling times and the "
                "%(num)d reviewers on duty (who worked on a case in the last hour). It changes as the queue moves.",
                inputs.on_duty,
            )
        else:
            data["basis"] = _("An estimate from how long recent reviews took.")
    elif standing.status == "submitted" and inputs.on_duty < 1:
        data["basis"] = _("No reviewer has worked on a case in the last hour, so we cannot estimate a time now.")
    elif standing.status == "submitted":
        data["basis"] = _("We have too few recent decisions to estimate a time now.")

    if standing.due_at <= now:
        data["state"] = "breached"
        data["promise"] = _(
            "We have not kept our promise of a decision within %(hours)s hours: it was due by "
            "%(due)s. We are sorry. Cases past their due time come first in the reviewers' queue.",
            hours=hours,
            due=due,
        )
    elif standing.due_at - now <= lifecycle.at_risk_margin():
        data["state"] = "at_risk"
        data["promise"] = _(
            "Your case is close to our %(hours)s-hour limit: the decision is due by %(due)s. We "
            "are working to meet it, but we cannot promise that we will.",
            hours=hours,
            due=due,
        )
    elif expected is not None and expected > standing.due_at:
        data["state"] = "late"
        data["promise"] = _(
            "At the current pace, the decision may come after our %(hours)s-hour promise (due by "
            "%(due)s). We cannot promise that we will meet it.",
            hours=hours,
            due=due,
        )
    else:
        data["state"] = "on_track"
        data["promise"] = _(
            "Our promise: a decision within %(hours)s hours of sending, not counting time we wait "
            "for documents from you, that is by %(due)s.",
            hours=hours,
            due=due,
        )
    return data


def for_case(user_id: int, reference: str, now: datetime, *, time_zone: str | None, locale: str) -> dict | None:
    """One update of the case page: None when ``reference`` is not the user's case."""
    standing = read(user_id, reference)
    if standing is None:
        return None
    inputs = cached_inputs(now) if standing.status in CLOCK_RUNNING_STATUSES else None
    return describe(standing, inputs, now, time_zone=time_zone, locale=locale)
