"""The scheduler's jobs, driven with a fixed ``now``: each acts once, however
often it runs."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recovery_app import lifecycle
from recovery_app.documents import storage
from recovery_app.models import AuditEvent, Case, Document, JobRun, OutboxMessage
from recovery_app.scheduler import jobs
from tests.helpers import later, outbox_messages, queued_notice


def audits(db, action, reference=None):
    query = select(AuditEvent).where(AuditEvent.action == action)
    if reference:
        query = query.where(AuditEvent.subject_id == reference)
    return db.session.execute(query).scalars().all()


def test_case_submitted_nine_hours_ago_becomes_at_risk_and_the_pool_is_told(make, now, db):
    reviewers = [make.user("reviewer", locale="en"), make.user("reviewer", locale="ja")]
    case = make.case(submitted_at=now - timedelta(hours=9))
    fresh = make.case(submitted_at=now - timedelta(hours=8, minutes=59))

    assert jobs.sla_sweep(now) == {"at_risk": 1, "breached": 0}

    db.session.refresh(case)
    db.session.refresh(fresh)
    assert case.at_risk_at == now and case.breached_at is None
    assert fresh.at_risk_at is None
    for reviewer in reviewers:
        [mail] = outbox_messages("email", reviewer.email)
        assert case.reference in mail.body and fresh.reference not in mail.body
    assert "Nobody holds these cases" in outbox_messages("email", reviewers[0].email)[0].body
    assert len(audits(db, "case.sla_at_risk", case.reference)) == 1


def test_at_risk_claimed_case_is_told_to_its_holder_only(make, now, db, desk):
    holder, other = make.user("reviewer", locale="en"), make.user("reviewer")
    case = make.case(submitted_at=now - timedelta(hours=10))
    desk.claim(case, holder, now - timedelta(minutes=20))

    jobs.sla_sweep(now)

    [mail] = outbox_messages("email", holder.email)
    assert "you hold" in mail.body and case.reference in mail.body
    assert outbox_messages("email", other.email) == []


def test_case_twelve_hours_and_a_minute_old_is_breached_and_escalated_to_managers(make, now, db, desk):
    managers = [make.user("manager", locale="en"), make.user("manager")]
    reviewer = make.user("reviewer")
    case = make.case(submitted_at=now - timedelta(hours=12, minutes=1))
    desk.claim(case, reviewer, now - timedelta(hours=1))

    result = jobs.sla_sweep(now)

    assert result["breached"] == 1
    db.session.refresh(case)
    assert case.breached_at == now and case.escalated_at == now and case.at_risk_at == now
    assert case.breached_held_by_id == reviewer.id
    for manager in managers:
        [mail] = outbox_messages("email", manager.email)
        assert case.reference in mail.body
    # Breached in the same sweep that would have flagged it at risk: only the breach is told.
    assert outbox_messages("email", reviewer.email) == []
    [event] = audits(db, "case.sla_breached", case.reference)
    assert event.details["held_by"] == reviewer.id


def test_running_the_sweep_twice_notifies_and_audits_once(make, now, db):
    make.user("manager")
    make.user("reviewer")
    breached = make.case(submitted_at=now - timedelta(hours=13))
    at_risk = make.case(submitted_at=now - timedelta(hours=10))

    first = jobs.sla_sweep(now)
    messages = len(outbox_messages("email"))
    second = jobs.sla_sweep(now)
    third = jobs.sla_sweep(later(now, minutes=1))

    assert first == {"at_risk": 1, "breached": 1}
    assert second == third == {"at_risk": 0, "breached": 0}
    assert len(outbox_messages("email")) == messages == 2
    assert len(audits(db, "case.sla_breached", breached.reference)) == 1
    assert len(audits(db, "case.sla_at_risk", at_risk.reference)) == 1


def test_needs_info_pause_of_five_hours_moves_the_due_time_by_five_hours(make, now, db, desk):
    reviewer = make.user("reviewer")
    start = now - timedelta(hours=10)
    case = make.case(submitted_at=start)
    desk.claim(case, reviewer, start + timedelta(minutes=30))
    desk.ask_for_documents(case, reviewer, start + timedelta(hours=1))
    desk.resubmit(case, start + timedelta(hours=6))

    assert case.due_at == start + timedelta(hours=17)
    # 10 h after submission, 5 h of it paused: 5 h on the clock, neither at risk nor breached.
    assert jobs.sla_sweep(now)["at_risk"] == 0
    assert jobs.sla_sweep(start + timedelta(hours=14, minutes=1))["at_risk"] == 1
    assert jobs.sla_sweep(start + timedelta(hours=17))["breached"] == 1


def test_a_case_waiting_on_the_seller_never_breaches(make, now, db, desk):
    reviewer = make.user("reviewer")
    case = make.case(submitted_at=now - timedelta(hours=30))
    desk.claim(case, reviewer, now - timedelta(hours=29))
    desk.ask_for_documents(case, reviewer, now - timedelta(hours=28))

    assert jobs.sla_sweep(now) == {"at_risk": 0, "breached": 0}


def test_a_stale_claim_goes_back_to_the_queue_and_is_audited(make, now, db, desk):
    reviewer = make.user("reviewer")
    stale = desk.claim(make.case(submitted_at=now - timedelta(hours=3)), reviewer, now - timedelta(hours=2))
    stale.last_activity_at = now - timedelta(minutes=61)
    busy = desk.claim(make.case(submitted_at=now - timedelta(hours=3)), reviewer, now - timedelta(hours=2))
    busy.last_activity_at = now - timedelta(minutes=30)
    db.session.flush()

    assert jobs.release_stale_claims(now) == {"released": 1}
    assert jobs.release_stale_claims(now) == {"released": 0}

    db.session.refresh(stale)
    db.session.refresh(busy)
    assert stale.status == "submitted" and stale.claimed_by_id is None and stale.claimed_at is None
    assert busy.status == "in_review" and busy.claimed_by_id == reviewer.id
    [event] = audits(db, "case.claim_released_stale")
    assert event.subject_id == stale.reference and event.details == {"from": "in_review", "to": "submitted"}


def test_needs_info_without_new_documents_for_seven_days_expires_and_the_seller_is_told(make, now, db, desk):
    reviewer = make.user("reviewer")
    seller = make.user(enrolled=False, locale="en")
    old = make.case(seller, submitted_at=now - timedelta(days=8))
    desk.claim(old, reviewer, now - timedelta(days=8))
    desk.ask_for_documents(old, reviewer, now - timedelta(days=7, minutes=1))
    recent = make.case(submitted_at=now - timedelta(days=8))
    desk.claim(recent, reviewer, now - timedelta(days=8))
    desk.ask_for_documents(recent, reviewer, now - timedelta(days=6))

    assert jobs.expire_needs_info(now) == {"expired": 1}
    assert jobs.expire_needs_info(now) == {"expired": 0}

    db.session.refresh(old)
    db.session.refresh(recent)
    assert old.status == "expired" and old.closed_at == now
    assert recent.status == "needs_info"
    [mail] = outbox_messages("email", seller.email)
    assert old.reference in mail.subject and "7 days" in mail.body
    assert len(audits(db, "case.expired", old.reference)) == 1


def test_bulk_transitions_outside_the_status_table_are_refused(app, now):
    with pytest.raises(ValueError):
        lifecycle.transition_where("submitted", "approved", now=now, actor="scheduler", action="approved")
    with pytest.raises(ValueError):  # leaving a pause needs per-case clock arithmetic
        lifecycle.transition_where("needs_info", "submitted", now=now, actor="scheduler", action="resubmitted")


def _stored_document(db, case, at):
    staged = storage.stage(b"\xff\xd8 pretend jpeg bytes " * 50)
    document = Document(
        case_id=case.id,
        side="front",
        storage_key=staged.storage_key,
        key_id=staged.key_id,
        sha256=staged.sha256,
        size=staged.size,
        content_type="image/jpeg",
        width=1000,
        height=630,
        created_at=at,
    )
    db.session.add(document)
    db.session.flush()
    storage.commit_staged([staged])
    return document, staged.final_path


def test_retention_deletes_the_files_and_keeps_the_rows(make, now, db, desk):
    reviewer = make.user("reviewer")
    old = make.case(submitted_at=now - timedelta(days=31, hours=2))
    old_doc, old_path = _stored_document(db, old, old.submitted_at)
    desk.claim(old, reviewer, now - timedelta(days=31, hours=1))
    desk.decide(old, reviewer, "approved", now - timedelta(days=30, minutes=1))
    young = make.case(submitted_at=now - timedelta(days=30))
    young_doc, young_path = _stored_document(db, young, young.submitted_at)
    desk.claim(young, reviewer, now - timedelta(days=29, hours=23))
    desk.decide(young, reviewer, "rejected", now - timedelta(days=29), reason="unreadable")
    sha, size = old_doc.sha256, old_doc.size

    assert jobs.purge_documents(now) == {"cases": 1, "files": 1}
    assert jobs.purge_documents(now) == {"cases": 0, "files": 0}

    assert not old_path.exists() and young_path.exists()
    db.session.refresh(old_doc)
    db.session.refresh(old)
    assert old_doc.purged_at == now and old_doc.sha256 == sha and old_doc.size == size
    assert old_doc.content_type == "image/jpeg"
    assert old.documents_purged_at == now
    with pytest.raises(storage.StorageError, match="purged"):
        storage.read(old_doc)
    assert len(audits(db, "case.documents_purged", old.reference)) == 1
    db.session.refresh(young_doc)
    assert young_doc.purged_at is None and storage.read(young_doc).startswith(b"\xff\xd8")


def test_orphan_cleanup_removes_staged_files_older_than_an_hour(app, now, db):
    old = storage.stage(b"left behind by a crash")
    new = storage.stage(b"being uploaded right now")
    two_hours_ago = (now - timedelta(hours=2)).timestamp()
    os.utime(old.tmp_path, (two_hours_ago, two_hours_ago))
    os.utime(new.tmp_path, (now.timestamp(), now.timestamp()))

    assert jobs.remove_orphans(now)["files_removed"] == 1
    assert not old.tmp_path.exists() and new.tmp_path.exists()


def test_outbox_messages_are_retried_with_backoff_then_marked_failed(app, now, db):
    from recovery_app import notify

    app.config["RECOVERY_SENDER"] = "tests.scheduler.conftest:ProviderDown"
    message = queued_notice("someone@example.test", now, name="Someone", reference="RC-TEST-0001")
    moment, tries = now, []
    for _ in range(10):
        result = jobs.deliver_outbox(moment)
        db.session.refresh(message)
        tries.append((result, message.status))
        if message.status == "failed":
            break
        assert message.next_try_at > moment
        moment = message.next_try_at
    assert message.status == "failed" and message.tries == notify.services.MAX_TRIES
    assert "provider unavailable" in message.last_error
    assert tries[0][0] == {"sent": 0, "retried": 1, "failed": 0}
    # Backoff doubles: 1, 2, 4, 8, 16 minutes between tries.
    assert moment - now == timedelta(minutes=1 + 2 + 4 + 8 + 16)


def test_a_failing_job_is_recorded_and_rolled_back_while_the_others_run(app, now, db, make, monkeypatch):
    make.user("manager")
    case = make.case(submitted_at=now - timedelta(hours=13))
    db.session.commit()

    def broken(now):
        db.session.execute(Case.__table__.update().values(status="withdrawn"))
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "JOBS", [jobs.Job("broken", broken, "RECOVERY_JOB_BROKEN_SECONDS", 60), jobs.JOBS[0]])
    results = [jobs.run_job(job, now) for job in jobs.JOBS]

    assert results[0] == (None, "RuntimeError: disk on fire")
    assert results[1][0]["breached"] == 1
    db.session.refresh(case)
    assert case.status == "submitted"
    runs = {run.job: run for run in db.session.execute(select(JobRun)).scalars()}
    assert runs["broken"].error == "RuntimeError: disk on fire" and runs["sla_sweep"].error is None


def test_prechecks_run_as_a_scheduler_job(app, now):
    job = next(job for job in jobs.JOBS if job.name == "prechecks")
    assert job.interval_seconds() == 60
    result, error = jobs.run_job(job, now)
    assert error is None and result["claimed"] == 0


def test_every_case_counts_once_in_the_outbox_even_with_many_reviewers(make, now, db):
    for _ in range(3):
        make.user("reviewer")
    for _ in range(4):
        make.case(submitted_at=now - timedelta(hours=10))
    jobs.sla_sweep(now)
    # One digest per reviewer, not one mail per case per reviewer.
    assert db.session.execute(select(func.count()).select_from(OutboxMessage)).scalar() == 3
