"""Claims: who holds a case. Each claim is a conditional transition (the
row changes only if it is still in the state the reviewer saw), so two
reviewers never hold one case. "Claim next" picks its row with ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL (on SQLite the same statement is one write under
the database lock)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select, update

from .. import audit, lifecycle
from ..case_labels import STATUS_LABELS
from ..extensions import db
from ..models import (
    Case,
    User,
)
from ..models.base import UTCDateTime
from ..models.users import STAFF_ROLES
from . import risk
from .services import HELD_STATUSES, ReviewError, _first_approver_id, _label, get_case


def _claim_values(reviewer: User, now: datetime) -> dict:
    moment = bindparam(None, now, type_=UTCDateTime())
    return {
        "claimed_by_id": reviewer.id,
        "claimed_at": now,
        "last_activity_at": now,
        "first_claimed_at": func.coalesce(Case.first_claimed_at, moment),
    }


def _not_claimable(case: Case, viewer: User) -> ReviewError:
    if case.claimed_by_id == viewer.id:
        return ReviewError(_l("You already hold case %(ref)s.", ref=case.reference))
    if case.claimed_by_id is not None:
        return ReviewError(
            _l("Case %(ref)s is already held by %(name)s.", ref=case.reference, name=_label(case.claimed_by))
        )
    if case.status in lifecycle.CLOSED:
        return ReviewError(
            _l(
                "Case %(ref)s is closed (%(status)s): there is nothing left to review.",
                ref=case.reference,
                status=STATUS_LABELS[case.status],
            )
        )
    if case.status == "needs_info":
        return ReviewError(_l("Case %(ref)s is waiting for the seller's new documents.", ref=case.reference))
    return ReviewError(_l("Case %(ref)s cannot be claimed now.", ref=case.reference))


def _after_claim(case: Case, reviewer: User, now: datetime) -> Case:
    db.session.refresh(case)
    risk.ensure_assessed(case, now)
    return case


def claim(
    reference: str, reviewer: User, *, now: datetime, address: str | None = None, browser: str | None = None
) -> Case:
    """Take one case. Exactly one of several reviewers pressing at once gets it;
    the others are told who has it."""
    case = get_case(reference)
    if case.status == "awaiting_second_approval":
        if _first_approver_id(case) == reviewer.id:
            raise ReviewError(
                _l(
                    "You gave the first approval of case %(ref)s: a different reviewer or a manager must confirm it.",
                    ref=case.reference,
                )
            )
        # The status stays: only the holder changes, if nobody holds it.
        taken = db.session.execute(
            update(Case)
            .where(Case.id == case.id, Case.status == "awaiting_second_approval", Case.claimed_by_id.is_(None))
            .values(**_claim_values(reviewer, now))
        ).rowcount
        db.session.refresh(case)
        if taken != 1:
            raise _not_claimable(case, reviewer)
        audit.record(
            "case.claimed",
            now=now,
            actor=reviewer,
            subject_type="case",
            subject_id=case.reference,
            details={"from": case.status, "to": case.status},
            address=address,
            browser=browser,
        )
        return _after_claim(case, reviewer, now)
    try:
        lifecycle.transition(
            case,
            "in_review",
            now=now,
            actor=reviewer,
            action="claimed",
            address=address,
            browser=browser,
            values=_claim_values(reviewer, now),
            where=(Case.claimed_by_id.is_(None),),
        )
    except lifecycle.TransitionError:
        raise _not_claimable(case, reviewer) from None
    return _after_claim(case, reviewer, now)


def claim_next(reviewer: User, *, now: datetime, address: str | None = None, browser: str | None = None) -> Case | None:
    """Take the most urgent unclaimed case, or None when there is none.

    PostgreSQL: the candidate row is locked with SKIP LOCKED, so concurrent
    reviewers each get a different case instead of queueing behind one row.
    SQLite: the whole statement runs under the database write lock.
    """
    candidate = (
        select(Case.id)
        .where(Case.status == "submitted", Case.claimed_by_id.is_(None))
        .order_by(Case.due_at, Case.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    moved = lifecycle.transition_where(
        "submitted",
        "in_review",
        Case.id == candidate,
        Case.claimed_by_id.is_(None),
        now=now,
        actor=reviewer,
        action="claimed",
        details={"next": True},
        values=_claim_values(reviewer, now),
        address=address,
        browser=browser,
    )
    if not moved:
        return None
    return _after_claim(db.session.get(Case, moved[0][0]), reviewer, now)


def release(
    reference: str, reviewer: User, *, now: datetime, address: str | None = None, browser: str | None = None
) -> Case:
    """Give a held case back to the queue (a second approval keeps its status)."""
    case = get_case(reference)
    refused = ReviewError(_l("You do not hold case %(ref)s, so there is nothing to release.", ref=case.reference))
    if case.status == "in_review":
        try:
            lifecycle.transition(
                case,
                "submitted",
                now=now,
                actor=reviewer,
                action="released",
                address=address,
                browser=browser,
                values={"last_activity_at": now},
                where=(Case.claimed_by_id == reviewer.id,),
            )
        except lifecycle.TransitionError:
            raise refused from None
        return case
    released = db.session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == "awaiting_second_approval", Case.claimed_by_id == reviewer.id)
        .values(claimed_by_id=None, claimed_at=None, last_activity_at=now)
    ).rowcount
    db.session.refresh(case)
    if released != 1:
        raise refused
    audit.record(
        "case.released",
        now=now,
        actor=reviewer,
        subject_type="case",
        subject_id=case.reference,
        details={"to": case.status},
        address=address,
        browser=browser,
    )
    return case


def staff_choices() -> list[tuple[int, str]]:
    """(id, label) of every active reviewer and manager, for the reassign form."""
    users = db.session.execute(
        select(User)
        .where(User.role.in_(STAFF_ROLES), User.disabled_at.is_(None))
        .order_by(User.display_name, User.email)
    ).scalars()
    return [(user.id, f"{user.display_name or user.email} ({user.email})") for user in users]


def reassign(
    reference: str,
    manager: User,
    to_user_id: int,
    *,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> Case:
    """A manager gives a case to another reviewer (or takes it)."""
    case = get_case(reference)
    target = db.session.get(User, to_user_id)
    if target is None or target.role not in STAFF_ROLES or target.disabled_at is not None:
        raise ReviewError(_l("Choose an active reviewer or manager."))
    if case.status == "awaiting_second_approval" and _first_approver_id(case) == target.id:
        raise ReviewError(
            _l(
                "%(name)s gave the first approval; the second approval must come from someone else.",
                name=_label(target),
            )
        )
    previous = case.claimed_by_id
    details = {"from_holder": previous, "to_holder": target.id}
    changed = ReviewError(
        _l("Case %(ref)s changed while you were looking at it. Please check it again.", ref=case.reference)
    )
    if case.status == "submitted":
        try:
            lifecycle.transition(
                case,
                "in_review",
                now=now,
                actor=manager,
                action="reassigned",
                details=details,
                address=address,
                browser=browser,
                values=_claim_values(target, now),
                where=(Case.claimed_by_id.is_(None),),
            )
        except lifecycle.TransitionError:
            raise changed from None
        return _after_claim(case, manager, now)
    if case.status not in HELD_STATUSES:
        raise (
            _not_claimable(case, manager)
            if case.status != "needs_info"
            else ReviewError(_l("Case %(ref)s is waiting for the seller's new documents.", ref=case.reference))
        )
    if previous == target.id:
        return case  # already with them (a second click, another tab): nothing moves, nothing to record
    # A held case keeps its status: only the holder changes, if it is still the one the manager saw.
    holder = Case.claimed_by_id.is_(None) if previous is None else Case.claimed_by_id == previous
    moved = db.session.execute(
        update(Case).where(Case.id == case.id, Case.status == case.status, holder).values(**_claim_values(target, now))
    ).rowcount
    if moved != 1:
        raise changed
    audit.record(
        "case.reassigned",
        now=now,
        actor=manager,
        subject_type="case",
        subject_id=case.reference,
        details={"from": case.status, "to": case.status, **details},
        address=address,
        browser=browser,
    )
    return _after_claim(case, manager, now)


# --- the case file ---------------------------------------------------------------
