"""The case lifecycle: which status may follow which, the one function that
moves a case, and the SLA clock.

    submitted  -> in_review (claimed) | withdrawn | cancelled
    in_review  -> submitted (released, or the claim went stale)
                | approved | rejected | needs_info | awaiting_second_approval | cancelled
    awaiting_second_approval -> approved | rejected | in_review (second reviewer disagrees) | cancelled
    needs_info -> submitted (new documents) | expired | withdrawn | cancelled

``cancelled``: the account's owner proved a second step they already had (a
sign-in with 2SV, or "this wasn't me" while signed in), so the owner wins over
whoever opened the case, at every open status short of a decision.

The clock runs while the case waits on us and pauses while it waits on the
seller (``needs_info``). ``due_at`` is stored, already moved by every pause, so
the queue and the SLA sweep are plain indexed range queries on it.

Every transition writes its audit event in the caller's transaction: the case
and its trail commit together or not at all.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

from . import audit
from .extensions import db
from .models import Case
from .models.cases import CaseStatus
from .reports import rollups

S = CaseStatus
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.SUBMITTED: frozenset({S.IN_REVIEW, S.WITHDRAWN, S.CANCELLED}),
    S.IN_REVIEW: frozenset(
        {S.SUBMITTED, S.APPROVED, S.REJECTED, S.NEEDS_INFO, S.AWAITING_SECOND_APPROVAL, S.CANCELLED}
    ),
    S.AWAITING_SECOND_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.IN_REVIEW, S.CANCELLED}),
    S.NEEDS_INFO: frozenset({S.SUBMITTED, S.EXPIRED, S.WITHDRAWN, S.CANCELLED}),
    S.APPROVED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
}
CLOSED = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read aloud without doubt


class TransitionError(Exception):
    """The case is not in a state that allows this step (someone else acted first)."""

    def __init__(self, case: Case, to_status: str):
        super().__init__(f"case {case.reference} cannot go from {case.status} to {to_status}")
        self.case = case
        self.to_status = to_status


def sla() -> timedelta:
    return timedelta(hours=current_app.config["RECOVERY_SLA_HOURS"])


def at_risk_margin() -> timedelta:
    """How long before the due time a case counts as at risk (25% of the SLA by default)."""
    return sla() * (1 - current_app.config["RECOVERY_AT_RISK_SHARE"])


def new_reference() -> str:
    """An unguessable reference such as ``RC-7K3Q-9PXM`` (about 39 bits)."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"RC-{chars[:4]}-{chars[4:]}"


def clock_seconds(case: Case, now: datetime) -> float:
    """Seconds the SLA clock has run for ``case`` up to ``now`` (pauses excluded)."""
    end = case.decided_at or case.closed_at or now
    paused = case.paused_seconds or 0
    if case.paused_since is not None:
        paused += max(0.0, (min(end, now) - case.paused_since).total_seconds())
    return max(0.0, (end - case.clock_started_at).total_seconds() - paused)


def new_case(user, document_type: str, *, now: datetime, address: str | None, browser: str | None) -> Case:
    """A freshly submitted case with its clock started. The caller adds documents
    and commits once, so a case never exists without them."""
    case = Case(
        reference=new_reference(),
        user_id=user.id,
        document_type=document_type,
        status="submitted",
        opened_address=address,
        opened_browser=(browser or "")[:300],
        high_risk=False,
        risk_reasons=[],
        created_at=now,
        submitted_at=now,
        clock_started_at=now,
        paused_seconds=0,
        due_at=now + sla(),
    )
    db.session.add(case)
    db.session.flush()
    rollups.case_opened(case, now)
    audit.record(
        "case.submitted",
        now=now,
        actor=user,
        subject_type="case",
        subject_id=case.reference,
        details={"document_type": document_type},
        address=address,
        browser=browser,
    )
    return case


def _arrival_values(to_status: str, now: datetime, values: dict | None) -> dict:
    """The columns every arrival in ``to_status`` sets: closing stamps it, and
    a case back in the queue, waiting on the seller or closed is held by nobody."""
    changes: dict = {"status": to_status, **(values or {})}
    if to_status in CLOSED:
        changes["closed_at"] = now
    if to_status in ("submitted", "needs_info") or to_status in CLOSED:
        changes["claimed_by_id"] = None
        changes["claimed_at"] = None
    return changes


def transition(
    case: Case,
    to_status: str,
    *,
    now: datetime,
    actor,
    action: str,
    details: dict | None = None,
    address: str | None = None,
    browser: str | None = None,
    values: dict | None = None,
    where: tuple = (),
) -> Case:
    """Move ``case`` to ``to_status`` if the table allows it, keeping the SLA
    clock right, and write the audit event ``case.<action>``.

    The move is one conditional UPDATE: it happens only if the row is still in
    the status it was read in (and meets ``where``, e.g. "nobody holds it"), so
    of two people acting at once exactly one moves the case; the other gets
    ``TransitionError``. ``values`` are set in the same statement (a claim)."""
    from_status = case.status
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise TransitionError(case, to_status)
    changes = _arrival_values(to_status, now, values)
    if to_status == "needs_info":
        changes["paused_since"] = now
        changes["info_requested_at"] = now
    if from_status == "needs_info" and case.paused_since is not None:
        paused = now - case.paused_since
        changes["paused_seconds"] = (case.paused_seconds or 0) + int(paused.total_seconds())
        changes["due_at"] = case.due_at + paused
        changes["paused_since"] = None
    if to_status in ("approved", "rejected"):
        changes["decided_at"] = now
    db.session.flush()
    moved = db.session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == from_status, *where)
        .values(**changes)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(case)
    if moved != 1:
        raise TransitionError(case, to_status)
    rollups.case_moved(case, from_status, to_status, now)
    audit.record(
        f"case.{action}",
        now=now,
        actor=actor,
        subject_type="case",
        subject_id=case.reference,
        details={"from": from_status, "to": to_status, **(details or {})},
        address=address,
        browser=browser,
    )
    return case


def transition_where(
    from_status: str,
    to_status: str,
    *conditions,
    now: datetime,
    actor,
    action: str,
    details: dict | None = None,
    values: dict | None = None,
    address: str | None = None,
    browser: str | None = None,
) -> list[tuple[int, str]]:
    """Move every case in ``from_status`` that meets ``conditions`` to
    ``to_status`` in one conditional UPDATE, and audit each case it moved.

    The set-based twin of ``transition`` for the scheduler's jobs: the WHERE on
    the from-status makes a second run (or a second runner) change nothing.
    Only moves that need no per-row clock arithmetic are allowed here (leaving
    ``needs_info`` only to a closed status); anything else goes through
    ``transition`` one case at a time. Returns ``(id, reference)`` per case moved.
    """
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise ValueError(f"no transition from {from_status} to {to_status}")
    if from_status == "needs_info" and to_status not in CLOSED:
        raise ValueError("leaving needs_info for an open status moves the due time; use transition()")
    changes = _arrival_values(to_status, now, values)
    moved = db.session.execute(
        update(Case)
        .where(Case.status == from_status, *conditions)
        .values(**changes)
        .returning(Case.id, Case.reference),
        execution_options={"synchronize_session": False},
    ).all()
    if to_status == "expired":
        rollups.cases_expired([case_id for case_id, _ in moved], now)
    for _case_id, reference in moved:
        audit.record(
            f"case.{action}",
            now=now,
            actor=actor,
            subject_type="case",
            subject_id=reference,
            details={"from": from_status, "to": to_status, **(details or {})},
            address=address,
            browser=browser,
        )
    if moved:
        db.session.expire_all()  # loaded cases must not keep the old status
    return [(case_id, reference) for case_id, reference in moved]
