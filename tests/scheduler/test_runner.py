"""One runner at a time, decided by the database; the commands; /healthz."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recovery_app import lifecycle
from recovery_app.auth.users import get_or_create_account
from recovery_app.extensions import db as _db
from recovery_app.models import AuditEvent, Case, JobRun, OutboxMessage, SchedulerLease
from recovery_app.models.base import utcnow
from recovery_app.notify.services import text_of
from recovery_app.scheduler.lock import LeaseLock
from recovery_app.scheduler.runner import Runner
from tests.helpers import TEST_PASSWORD


def test_lease_is_held_by_one_holder_until_it_expires(app, now):
    first, second = LeaseLock("host-a:1"), LeaseLock("host-b:2")
    lease = timedelta(seconds=app.config["RECOVERY_SCHEDULER_LEASE_SECONDS"])

    assert first.acquire(now)
    assert not second.acquire(now + timedelta(seconds=10))
    assert first.renew(now + timedelta(seconds=30))  # renewed: good for another lease period
    assert not second.acquire(now + lease + timedelta(seconds=1))
    # The holder died (no more renewals): the lease runs out and the other takes over.
    assert second.acquire(now + timedelta(seconds=30) + lease + timedelta(seconds=1))
    assert not first.renew(now + timedelta(seconds=30) + lease + timedelta(seconds=2))
    row = _db.session.get(SchedulerLease, "scheduler")
    assert row.holder == "host-b:2"


def test_released_lease_is_free_at_once(app, now):
    first, second = LeaseLock("a"), LeaseLock("b")
    assert first.acquire(now)
    first.release()
    assert second.acquire(now + timedelta(seconds=1))


def _wait(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_two_runners_started_together_escalate_every_breached_case_exactly_once(live_app, backend):
    """On PostgreSQL the advisory lock decides, on SQLite the lease row. Each
    runner has its own thread, session and connection."""
    live_app.config.update(
        RECOVERY_SCHEDULER_HEARTBEAT_SECONDS=0.2,
        RECOVERY_SCHEDULER_STANDBY_POLL_SECONDS=0.1,
        RECOVERY_SCHEDULER_LEASE_SECONDS=5,
        RECOVERY_JOB_SLA_SWEEP_SECONDS=1,
    )
    from recovery_app.auth.users import create_user

    with live_app.app_context():
        now = utcnow()
        manager = create_user(
            email="boss@example.test", password=TEST_PASSWORD, role="manager", now=now, check_password=False
        )
        seller = create_user(
            email="seller@example.test",
            password=TEST_PASSWORD,
            role="seller_owner",
            now=now,
            account=get_or_create_account("S", now),
            check_password=False,
        )
        references = [
            lifecycle.new_case(seller, "passport", now=now - timedelta(hours=13), address=None, browser=None).reference
            for _ in range(5)
        ]
        _db.session.commit()
        manager_email = manager.email
        _db.session.remove()

    said: list[str] = []
    runners = [Runner(live_app, holder=f"runner-{n}", say=said.append) for n in (1, 2)]
    threads = [threading.Thread(target=runner.run, daemon=True) for runner in runners]
    for thread in threads:
        thread.start()
    try:
        assert _wait(lambda: any(r.leading.is_set() for r in runners))
        leader = next(r for r in runners if r.leading.is_set())
        standby = next(r for r in runners if r is not leader)
        assert _wait(lambda: any("standby" in line and standby.holder in line for line in said))

        def escalated() -> int:
            with live_app.app_context():
                try:
                    return _db.session.execute(
                        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "case.sla_breached")
                    ).scalar()
                finally:
                    _db.session.remove()

        assert _wait(lambda: escalated() == 5, seconds=30)

        def sweeps() -> int:
            with live_app.app_context():
                try:
                    return _db.session.execute(
                        select(func.count()).select_from(JobRun).where(JobRun.job == "sla_sweep")
                    ).scalar()
                finally:
                    _db.session.remove()

        done = sweeps()
        assert _wait(lambda: sweeps() >= done + 2, seconds=30)  # more sweeps ran: nothing may happen twice
        assert escalated() == 5
        assert not standby.leading.is_set()

        leader.stop()
        assert _wait(lambda: standby.leading.is_set()), "the standby did not take over"

        def swept_by(holder: str) -> bool:
            with live_app.app_context():
                try:
                    return (
                        _db.session.execute(
                            select(JobRun.id).where(
                                JobRun.job == "sla_sweep", JobRun.holder == holder, JobRun.error.is_(None)
                            )
                        ).first()
                        is not None
                    )
                finally:
                    _db.session.remove()

        assert _wait(lambda: swept_by(standby.holder), seconds=30)
    finally:
        for runner in runners:
            runner.stop()
        for thread in threads:
            thread.join(timeout=10)

    with live_app.app_context():
        events = (
            _db.session.execute(select(AuditEvent.subject_id).where(AuditEvent.action == "case.sla_breached"))
            .scalars()
            .all()
        )
        assert sorted(events) == sorted(references)
        mails = _db.session.execute(select(OutboxMessage).where(OutboxMessage.to == manager_email)).scalars().all()
        assert len(mails) == 1 and all(ref in text_of(mails[0])[1] for ref in references)
        holders = set(_db.session.execute(select(JobRun.holder).where(JobRun.job == "sla_sweep")).scalars())
        assert holders == {"runner-1", "runner-2"}  # each led once, one after the other
        assert all(case.escalated_at is not None for case in _db.session.execute(select(Case)).scalars())
        _db.session.remove()
    assert any("holds the scheduler lock" in line for line in said)


def test_the_lock_is_freed_when_its_holder_dies(live_app, backend):
    """PostgreSQL ends a dead process's session and with it the advisory lock;
    on SQLite the holder's lease runs out one lease period after its last renewal."""
    from recovery_app.scheduler.lock import AdvisoryLock, LeaseLock, lock_for

    with live_app.app_context():
        first, second = lock_for("a"), lock_for("b")
        assert isinstance(first, AdvisoryLock if backend == "postgresql" else LeaseLock)
        now = utcnow()
        assert first.acquire(now)
        assert not second.acquire(now)
        if backend == "postgresql":
            first._connection.invalidate()  # the process died: its database session ends
            first._connection = None
            later_on = now
        else:
            later_on = now + timedelta(seconds=live_app.config["RECOVERY_SCHEDULER_LEASE_SECONDS"] + 1)
        # The server notices the closed connection a moment later: the standby polls.
        assert _wait(lambda: second.acquire(later_on), seconds=10)
        second.release()
        _db.session.remove()


def test_run_once_runs_every_job_and_says_what_each_did(runner, make, now, db):
    make.user("manager")
    make.case(submitted_at=now - timedelta(hours=13))
    result = runner.invoke(args=["scheduler", "run-once", "--now", "2026-03-02T09:00:00Z"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "running every job once at 2026-03-02T09:00:00+00:00"
    assert "sla_sweep: at_risk 0, breached 1" in lines
    assert {line.split(":")[0] for line in lines[1:]} == {
        "sla_sweep",
        "stale_claims",
        "needs_info_expiry",
        "retention",
        "orphans",
        "outbox",
        "prechecks",
        "report_rollups",
    }


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00", "2026-03-02T25:00:00Z", ""])
def test_run_once_refuses_a_now_that_does_not_parse_and_changes_nothing(runner, make, now, db, bad):
    make.case(submitted_at=now - timedelta(hours=13))
    result = runner.invoke(args=["scheduler", "run-once", "--now", bad])
    assert result.exit_code == 2
    assert "is not an ISO 8601 time" in result.output
    assert db.session.execute(select(func.count()).select_from(JobRun)).scalar() == 0
    assert db.session.execute(select(Case.breached_at)).scalar() is None


@pytest.mark.parametrize(
    "edge",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59",
        "1999-12-31T23:59:59Z",
    ],
)
def test_run_once_refuses_a_now_past_the_calendar_and_changes_nothing(runner, db, edge):
    result = runner.invoke(args=["scheduler", "run-once", "--now", edge])
    assert result.exit_code == 2 and "is outside the times this can run at" in result.output
    assert db.session.execute(select(func.count()).select_from(JobRun)).scalar() == 0


def test_healthz_reports_each_part_and_503_without_a_heartbeat(client, app, now):
    import os

    os.makedirs(app.config["RECOVERY_UPLOAD_DIR"], exist_ok=True)
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["database"] == {"status": "ok"} and body["uploads"] == {"status": "ok"}
    assert body["scheduler"]["status"] == "down"

    LeaseLock("web-1").acquire(utcnow())
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"
    assert response.get_json()["scheduler"]["holder"] == "web-1"
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_the_heartbeat_is_old_or_uploads_are_missing(client, app):
    LeaseLock("web-1").acquire(utcnow() - timedelta(minutes=10))
    body = client.get("/healthz").get_json()
    assert body["scheduler"]["status"] == "down" and body["scheduler"]["heartbeat_age_seconds"] >= 600
    assert body["uploads"]["status"] == "down"  # the folder was never created here
    assert client.get("/healthz").status_code == 503


def test_scheduler_thread_never_starts_in_tests(client, app):
    from recovery_app.scheduler import runner as runner_module

    client.get("/healthz")
    assert id(app) not in runner_module._started
    assert not any(thread.name == "recovery-scheduler" for thread in threading.enumerate())
