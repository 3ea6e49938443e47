"""The SLA sweep acts on many cases at once in a fixed number of statements:
set-based UPDATE … RETURNING, one batch of audit events whose hash chain is
computed in one pass, and one multi-row INSERT of the notices."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from recovery_app import audit
from recovery_app.database import unit
from recovery_app.extensions import db as _db
from recovery_app.models import AuditEvent, OutboxMessage
from recovery_app.models.base import utcnow
from recovery_app.notify import deliver_due
from recovery_app.scheduler import jobs
from tests.helpers import count_statements, outbox_messages


def _crossing(make, desk, now, count, holders):
    """``count`` cases that cross a line at ``now``: a third breached, the rest
    at risk, some of those held by a reviewer."""
    cases = []
    for n in range(count):
        if n % 3 == 0:
            case = make.case(submitted_at=now - timedelta(hours=12, minutes=1 + n))
        else:
            case = make.case(submitted_at=now - timedelta(hours=9, minutes=1 + n))
            if n % 3 == 2:
                desk.claim(case, holders[n % len(holders)], now - timedelta(minutes=5))
        cases.append(case)
    return cases


def _count(action):
    return _db.session.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)).scalar()


def test_the_sweeps_statements_do_not_grow_with_the_cases_it_changes(make, desk, now, db):
    make.user("manager")
    holders = [make.user("reviewer"), make.user("reviewer")]
    _crossing(make, desk, now, 5, holders)
    small = count_statements(lambda: jobs.sla_sweep(now))
    later = now + timedelta(days=2)
    _crossing(make, desk, later, 50, holders)
    result = {}
    large = count_statements(lambda: result.update(jobs.sla_sweep(later)))
    assert result == {"at_risk": 33, "breached": 20}  # the 50, and the first sweep's 3 at-risk cases now breached
    assert small == large  # 5 changes or 50, the same statements
    assert large <= 12


def test_the_audit_chain_holds_after_a_sweep_of_many_cases(make, desk, now, db):
    audit.record("case.viewed", now=now, actor="reviewer@example.test", subject_type="case", subject_id="RC-0")
    make.user("manager")
    cases = _crossing(make, desk, now, 30, [make.user("reviewer")])
    jobs.sla_sweep(now)
    audit.record("case.viewed", now=now, actor="reviewer@example.test", subject_type="case", subject_id="RC-1")
    result = audit.verify()
    assert result.ok, result
    events = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    swept = {e.subject_id for e in events if e.action in ("case.sla_breached", "case.sla_at_risk")}
    assert swept == {case.reference for case in cases}
    assert events[-1].action == "case.viewed"  # a single record after the batch links to its last event


def test_each_notice_is_queued_and_sent_once_and_a_second_sweep_acts_on_nothing(make, desk, now, db, app):
    managers = [make.user("manager"), make.user("manager", locale="en")]
    holders = [make.user("reviewer"), make.user("reviewer", locale="en")]
    cases = _crossing(make, desk, now, 12, holders)
    breached = {case.reference for n, case in enumerate(cases) if n % 3 == 0}

    assert jobs.sla_sweep(now) == {"at_risk": 8, "breached": 4}
    assert jobs.sla_sweep(now + timedelta(minutes=1)) == {"at_risk": 0, "breached": 0}

    assert _count("case.sla_breached") == 4 and _count("case.sla_at_risk") == 8
    # One digest per manager and per reviewer (pool or own cases), each queued once.
    mails = outbox_messages("email")
    assert sorted(m.to for m in mails) == sorted([m.email for m in managers] + [h.email for h in holders] * 2)
    for manager in managers:
        [mail] = outbox_messages("email", manager.email)
        assert all(reference in mail.body for reference in breached)

    sent = deliver_due(now + timedelta(minutes=5))
    again = deliver_due(now + timedelta(minutes=6))
    assert sent["sent"] == len(mails) and again["sent"] == 0
    rows = db.session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
    assert all(row.status == "sent" and row.tries == 1 and row.body for row in rows)


def test_a_batch_and_single_events_written_at_once_keep_one_chain(live_app):
    """Writers in other transactions wait for the head row and link after the batch."""
    with live_app.app_context():
        with unit():
            audit.record("case.viewed", now=utcnow(), actor="x@example.test", subject_type="case", subject_id="0")
    errors = []
    start = threading.Barrier(4)

    def batch(n):
        try:
            with live_app.app_context():
                start.wait(timeout=10)
                for _round in range(3):
                    with unit():
                        audit.record_many(
                            [audit.Entry("case.sla_at_risk", "case", f"B{n}-{i}", {"i": i}) for i in range(20)],
                            now=utcnow(),
                            actor="scheduler",
                        )
                _db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def single(n):
        try:
            with live_app.app_context():
                start.wait(timeout=10)
                for i in range(15):
                    with unit():
                        audit.record(
                            "case.viewed",
                            now=utcnow(),
                            actor="x@example.test",
                            subject_type="case",
                            subject_id=f"S{n}-{i}",
                        )
                _db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=batch, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=single, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with live_app.app_context():
        result = audit.verify()
        assert result.ok and result.checked == 1 + 2 * 3 * 20 + 2 * 15, result
        _db.session.remove()
