"""The audit log is append-only and hash-chained; verify names the first broken entry."""

from sqlalchemy import update

from recovery_app import audit
from recovery_app.extensions import db
from recovery_app.models import AuditEvent
from recovery_app.models.base import utcnow
from tests.helpers import units_at_once


def _three_events(now):
    for n in range(3):
        audit.record(
            "case.viewed",
            now=now,
            actor="reviewer@example.test",
            subject_type="case",
            subject_id=f"RC-{n}",
            details={"n": n},
            address="127.0.0.1",
            browser="pytest",
        )


def test_chain_of_fresh_events_verifies(app, now):
    _three_events(now)
    result = audit.verify()
    assert result.ok and result.checked == 3


def test_each_entry_links_to_the_previous_hash(app, now):
    _three_events(now)
    events = db.session.query(AuditEvent).order_by(AuditEvent.seq).all()
    assert events[0].prev_hash == audit.GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


def test_tampered_row_is_named_by_verify(app, now):
    _three_events(now)
    db.session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(details={"n": 99}))
    result = audit.verify()
    assert not result.ok
    assert result.broken_seq == 2
    assert result.checked == 1


def test_deleted_last_row_is_detected(app, now):
    _three_events(now)
    db.session.query(AuditEvent).filter(AuditEvent.seq == 3).delete()
    result = audit.verify()
    assert not result.ok and result.broken_seq == 3


def test_secrets_are_refused_in_details(app, now):
    import pytest

    with pytest.raises(ValueError):
        audit.record("x", now=now, subject_type="user", subject_id=1, details={"password": "hunter2"})


def test_cli_verify_reports_the_broken_entry(app, runner, now):
    _three_events(now)
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.output
    db.session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(action="case.approved"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "entry 1" in broken.output


def test_the_first_entries_of_an_empty_log_written_at_once_both_link(live_app, backend):
    """The log's head row is made by its first writer. Two first writers at the
    same moment (a fresh install's first requests) both get their entry, one
    after the other in the chain, instead of one failing on the head's key."""

    def writer(n, many):
        def write():
            if many:
                return audit.record_many(
                    [audit.Entry("case.viewed", "case", f"RC-{n}-{k}") for k in range(3)], now=utcnow()
                )
            return audit.record("case.viewed", now=utcnow(), subject_type="case", subject_id=f"RC-{n}").seq

        return (lambda: ()), write

    outcomes = units_at_once(live_app, backend, [writer(0, False), writer(1, True)])
    assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    with live_app.app_context():
        result = audit.verify()
        assert result.ok and result.checked == 4, result
        db.session.remove()
