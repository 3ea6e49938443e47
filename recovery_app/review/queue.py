"""The reviewers' queue: cases ordered by SLA due time, filtered, paged with a
keyset cursor over the (status, due_at) index, a fixed number of statements
per page whatever the number of cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, union_all
from sqlalchemy.orm import aliased

from .. import lifecycle
from ..extensions import db
from ..models import (
    Case,
    User,
)
from ..models.cases import CLOCK_RUNNING_STATUSES
from ..prechecks.services import failed_filter, flagged_filter
from ..web import row_id
from .services import HELD_STATUSES, ReviewError, _utc

PAGE_SIZE = 50
# The queue shows, by default, the cases that wait on us.
WAITING_ON_US = ("submitted", "in_review", "awaiting_second_approval")
QUEUE_STATUSES = WAITING_ON_US + ("needs_info",)


# Statuses in which a case can be held by someone.
@dataclass
class SlaState:
    left: timedelta  # negative: overdue
    paused: bool
    at_risk: bool
    breached: bool


def sla_state(case: Case, now: datetime) -> SlaState:
    if case.status == "needs_info" and case.paused_since is not None:
        left = case.due_at - case.paused_since
        return SlaState(left, True, False, left < timedelta(0))
    if case.status not in CLOCK_RUNNING_STATUSES:
        end = case.decided_at or case.closed_at or now
        left = case.due_at - end
        return SlaState(left, False, False, left < timedelta(0))
    left = case.due_at - now
    breached = left <= timedelta(0)
    return SlaState(left, False, not breached and left <= lifecycle.at_risk_margin(), breached)


# --- the queue -------------------------------------------------------------------


@dataclass
class QueueFilters:
    status: str = ""
    at_risk: bool = False
    breached: bool = False
    mine: bool = False
    flagged: bool = False  # a pre-check said "look closely" or "fail", or could not run
    after: tuple[datetime, int] | None = None

    def args(self) -> dict:
        """Query-string arguments that reproduce these filters (no cursor)."""
        args: dict = {}
        if self.status:
            args["status"] = self.status
        for name in ("at_risk", "breached", "mine", "flagged"):
            if getattr(self, name):
                args[name] = "1"
        return args


@dataclass
class QueueRow:
    case: Case
    holder: str | None
    sla: SlaState
    precheck_failed: bool = False


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    first_page: bool


def encode_cursor(due_at: datetime, case_id: int) -> str:
    return f"{_utc(due_at):%Y%m%dT%H%M%S.%f}Z.{case_id}"


def decode_cursor(text: str) -> tuple[datetime, int]:
    try:
        stamp, case_id = text.rsplit(".", 1)
        moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except (ValueError, AttributeError):
        raise ReviewError(_l("That page link is not valid. Showing the first page.")) from None
    number = row_id(case_id)  # digits only, and no larger than a case id can be
    if number is None or number < 1 or len(text) > 60:
        raise ReviewError(_l("That page link is not valid. Showing the first page."))
    return moment, number


def queue_page(viewer: User, filters: QueueFilters, now: datetime) -> QueuePage:
    """One page of the queue, most urgent first, in one statement.

    Each status is read by its own range scan of the (status, due_at) index,
    at most a page long, and the short lists are merged: the cost is the page
    size whatever the number of open cases (keyset pagination, no OFFSET).
    The pre-check filter and each row's failed-check badge are correlated
    EXISTS probes of the pre-check tables' case_id indexes, inside that same
    statement: no query per row.
    """
    statuses = (filters.status,) if filters.status else WAITING_ON_US
    if filters.mine:
        statuses = tuple(status for status in statuses if status in HELD_STATUSES)
    if filters.at_risk or filters.breached:
        statuses = tuple(status for status in statuses if status in CLOCK_RUNNING_STATUSES)
    if not statuses:
        return QueuePage([], None, filters.after is None)
    conditions = []
    if filters.mine:
        conditions.append(Case.claimed_by_id == viewer.id)
    if filters.breached and filters.at_risk:
        conditions.append(Case.due_at < now + lifecycle.at_risk_margin())
    elif filters.breached:
        conditions.append(Case.due_at <= now)
    elif filters.at_risk:
        conditions.extend([Case.due_at > now, Case.due_at <= now + lifecycle.at_risk_margin()])
    if filters.flagged:
        conditions.append(flagged_filter())
    if filters.after is not None:
        due, case_id = filters.after
        conditions.extend([Case.due_at >= due, (Case.due_at > due) | (Case.id > case_id)])
    parts = [
        select(
            select(Case.id, Case.due_at)
            .where(Case.status == status, *conditions)
            .order_by(Case.due_at, Case.id)
            .limit(PAGE_SIZE + 1)
            .subquery()
        )
        for status in statuses
    ]
    picked = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    holder = aliased(User)
    rows = db.session.execute(
        select(Case, holder.display_name, holder.email, failed_filter().label("precheck_failed"))
        .join(picked, picked.c.id == Case.id)
        .outerjoin(holder, holder.id == Case.claimed_by_id)
        .order_by(Case.due_at, Case.id)
        .limit(PAGE_SIZE + 1)
    ).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = encode_cursor(rows[-1][0].due_at, rows[-1][0].id) if more else None
    return QueuePage(
        [
            QueueRow(case, (name or email) if email else None, sla_state(case, now), bool(failed))
            for case, name, email, failed in rows
        ],
        next_cursor,
        filters.after is None,
    )


# --- claims ----------------------------------------------------------------------
