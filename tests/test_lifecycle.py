"""The case lifecycle table and the SLA clock."""

from datetime import timedelta

import pytest

from recovery_app import lifecycle
from recovery_app.models import AuditEvent


def test_new_case_is_due_after_the_sla(make, now):
    case = make.case(submitted_at=now)
    assert case.status == "submitted"
    assert case.due_at == now + timedelta(hours=12)
    assert case.reference.startswith("RC-") and len(case.reference) == 12


def test_references_are_unguessable_and_unambiguous():
    refs = {lifecycle.new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    assert all(not set(r[3:].replace("-", "")) & set("01OILU") for r in refs)


def test_transitions_outside_the_table_are_refused(make, now, db):
    case = make.case(submitted_at=now)
    with pytest.raises(lifecycle.TransitionError):
        lifecycle.transition(case, "approved", now=now, actor="system", action="approved")
    assert case.status == "submitted"


def test_needs_info_pause_moves_the_due_time_by_the_pause(make, now, db):
    case = make.case(submitted_at=now)
    lifecycle.transition(case, "in_review", now=now + timedelta(hours=1), actor="r", action="claimed")
    lifecycle.transition(case, "needs_info", now=now + timedelta(hours=2), actor="r", action="info_requested")
    lifecycle.transition(case, "submitted", now=now + timedelta(hours=7), actor="s", action="resubmitted")
    assert case.due_at == now + timedelta(hours=17)
    assert case.paused_seconds == 5 * 3600
    assert lifecycle.clock_seconds(case, now + timedelta(hours=8)) == 3 * 3600


def test_every_transition_is_audited(make, now, db):
    case = make.case(submitted_at=now)
    lifecycle.transition(case, "withdrawn", now=now, actor="seller", action="withdrawn")
    actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.seq)]
    assert actions == ["case.submitted", "case.withdrawn"]
    assert case.closed_at == now
