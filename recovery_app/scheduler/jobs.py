"""The scheduler's jobs, and the registry the runner reads.

Every job takes ``now`` and is idempotent: it changes rows with conditional,
set-based UPDATEs whose WHERE clause no longer matches once the change is made,
so a second run, or a second runner, changes nothing twice. A job returns a
small dict saying what it did (printed by ``flask scheduler run-once`` and kept
in ``job_runs``).

Adding a job is one line in ``JOBS``: a name, the function, the setting that
holds its interval, and the interval used when that setting is absent.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.sql import func

from .. import audit, lifecycle, notify
from ..database import unit
from ..documents import storage
from ..extensions import db
from ..i18n import zoned
from ..models import Case, Document, JobRun, User
from ..models.cases import CLOCK_RUNNING_STATUSES

SYSTEM = "scheduler"
JOB_RUNS_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[datetime], dict]
    setting: str
    default_seconds: int

    def interval_seconds(self) -> int:
        return int(current_app.config.get(self.setting, self.default_seconds))


def _returning(statement) -> list:
    rows = db.session.execute(statement, execution_options={"synchronize_session": False}).all()
    if rows:
        db.session.expire_all()  # loaded objects must not keep the old values
    return rows


def _staff(role: str) -> list[User]:
    return list(
        db.session.execute(
            select(User).where(User.role == role, User.disabled_at.is_(None)).order_by(User.id)
        ).scalars()
    )


def _local(moment: datetime, user: User) -> str:
    return zoned(moment, user.time_zone, user.locale or "ja", "short")


def _notice(user: User, template: str, cases: list) -> notify.Email:
    items = [{"reference": reference, "due": _local(due_at, user)} for reference, due_at in cases]
    return notify.Email(
        user.email,
        f"scheduler/email/{template}",
        user.locale or "ja",
        {
            "name": user.display_name or user.email,
            "cases": items,
            "base_url": current_app.config["RECOVERY_BASE_URL"].rstrip("/"),
        },
    )


# --- the jobs ----------------------------------------------------------------


def sla_sweep(now: datetime) -> dict:
    """Breached cases are flagged and escalated to every manager; cases past 75%
    of their SLA are flagged at risk and their holder (or, unclaimed, every
    reviewer) is told. Each case is flagged, audited and notified once.

    Its statements do not grow with the cases it changes: two set-based
    UPDATE … RETURNING, one batch of audit events (``audit.record_many``), the
    staff it tells, and one multi-row INSERT of the notices."""
    running = Case.status.in_(CLOCK_RUNNING_STATUSES)
    breached = _returning(
        update(Case)
        .where(running, Case.breached_at.is_(None), Case.due_at <= now)
        .values(
            breached_at=now,
            escalated_at=now,
            at_risk_at=func.coalesce(Case.at_risk_at, now),
            breached_held_by_id=Case.claimed_by_id,
        )
        .returning(Case.reference, Case.due_at, Case.claimed_by_id)
    )
    at_risk = _returning(
        update(Case)
        .where(running, Case.at_risk_at.is_(None), Case.due_at <= now + lifecycle.at_risk_margin())
        .values(at_risk_at=now)
        .returning(Case.reference, Case.due_at, Case.claimed_by_id)
    )
    audit.record_many(
        [
            audit.Entry(action, "case", reference, {"due_at": due_at.isoformat(), "held_by": holder_id})
            for action, rows in (("case.sla_breached", breached), ("case.sla_at_risk", at_risk))
            for reference, due_at, holder_id in rows
        ],
        now=now,
        actor=SYSTEM,
    )
    notices = []
    if breached:
        notices += [_notice(manager, "breached", [(r, d) for r, d, _ in breached]) for manager in _staff("manager")]
    if at_risk:
        by_holder: dict[int | None, list] = defaultdict(list)
        for reference, due_at, holder_id in at_risk:
            by_holder[holder_id].append((reference, due_at))
        unclaimed = by_holder.pop(None, [])
        holders = db.session.execute(select(User).where(User.id.in_(by_holder))).scalars() if by_holder else []
        notices += [_notice(holder, "at_risk_yours", by_holder[holder.id]) for holder in holders]
        if unclaimed:
            notices += [_notice(reviewer, "at_risk_pool", unclaimed) for reviewer in _staff("reviewer")]
    notify.queue_emails(notices, now)
    return {"at_risk": len(at_risk), "breached": len(breached)}


def release_stale_claims(now: datetime) -> dict:
    """A claim with no reviewer activity for an hour goes back to the queue."""
    cutoff = now - timedelta(minutes=current_app.config["RECOVERY_STALE_CLAIM_MINUTES"])
    moved = lifecycle.transition_where(
        "in_review",
        "submitted",
        func.coalesce(Case.last_activity_at, Case.claimed_at, Case.submitted_at) < cutoff,
        now=now,
        actor=SYSTEM,
        action="claim_released_stale",
    )
    return {"released": len(moved)}


def expire_needs_info(now: datetime) -> dict:
    """No new documents within the allowed days: the case expires and the seller is told."""
    cutoff = now - timedelta(days=current_app.config["RECOVERY_NEEDS_INFO_DAYS"])
    moved = lifecycle.transition_where(
        "needs_info",
        "expired",
        Case.paused_since <= cutoff,
        now=now,
        actor=SYSTEM,
        action="expired",
    )
    if moved:
        rows = db.session.execute(
            select(Case.reference, User)
            .join(User, User.id == Case.user_id)
            .where(Case.id.in_([case_id for case_id, _ in moved]))
        ).all()
        for reference, seller in rows:
            notify.queue_email(
                seller.email,
                "scheduler/email/case_expired",
                seller.locale or "ja",
                now,
                name=seller.display_name or seller.email,
                reference=reference,
                days=current_app.config["RECOVERY_NEEDS_INFO_DAYS"],
                base_url=current_app.config["RECOVERY_BASE_URL"].rstrip("/"),
            )
    return {"expired": len(moved)}


def purge_documents(now: datetime, batch: int = 500) -> dict:
    """Retention: once a case has been closed for the retention period, its
    document files are overwritten and unlinked. The rows stay (hash, size,
    type) with the time of purging, and the purge is audited per case."""
    cutoff = now - timedelta(days=current_app.config["RECOVERY_RETENTION_DAYS"])
    case_ids = list(
        db.session.execute(
            select(Case.id)
            .where(Case.closed_at.is_not(None), Case.closed_at <= cutoff, Case.documents_purged_at.is_(None))
            .order_by(Case.closed_at)
            .limit(batch)
        ).scalars()
    )
    if not case_ids:
        return {"cases": 0, "files": 0}
    documents = (
        db.session.execute(select(Document).where(Document.case_id.in_(case_ids), Document.purged_at.is_(None)))
        .scalars()
        .all()
    )
    # Files first: if the commit below fails, the next run finds the rows
    # unpurged and completes them (purging a missing file is a no-op).
    files = sum(1 for document in documents if storage.purge(document))
    db.session.execute(
        update(Document).where(Document.case_id.in_(case_ids), Document.purged_at.is_(None)).values(purged_at=now),
        execution_options={"synchronize_session": False},
    )
    purged = _returning(
        update(Case)
        .where(Case.id.in_(case_ids), Case.documents_purged_at.is_(None))
        .values(documents_purged_at=now)
        .returning(Case.reference)
    )
    for (reference,) in purged:
        audit.record(
            "case.documents_purged",
            now=now,
            actor=SYSTEM,
            subject_type="case",
            subject_id=reference,
            details={"retention_days": current_app.config["RECOVERY_RETENTION_DAYS"]},
        )
    db.session.expire_all()
    return {"cases": len(purged), "files": files}


def remove_orphans(now: datetime) -> dict:
    """Staged upload files older than an hour (a crash between write and
    commit) are removed; job records older than a week are dropped."""
    removed = storage.remove_orphans(now, timedelta(hours=1))
    pruned = db.session.execute(delete(JobRun).where(JobRun.started_at < now - JOB_RUNS_KEPT)).rowcount
    return {"files_removed": removed, "job_runs_pruned": pruned}


def deliver_outbox(now: datetime) -> dict:
    """Retry what the immediate send after the commit could not send (and any
    message nobody handed over), with exponential backoff; after the last try
    a message is failed (managers see it on the dashboard and /healthz).
    Each message is claimed before it is sent, so this job, a ``run-once``
    beside it and an immediate send never send one message twice; the claim
    alone makes that so, without the runner lock. Claims, sends and outcomes
    are committed step by step: no transaction stays open during a send."""
    return notify.deliver_due(now)


def run_prechecks(now: datetime) -> dict:
    """Reviewer-assist checks on newly submitted documents (quality, MRZ, reuse, faces).
    Imported when first run: OCR and vision libraries are heavy to load."""
    from ..prechecks.jobs import run_pending

    return run_pending(now)


def roll_up_reports(now: datetime) -> dict:
    """Add the events since the last run to the reports' daily rollups (see reports.rollups)."""
    from ..reports import rollups

    return rollups.roll_up(now)


JOBS: list[Job] = [
    Job("sla_sweep", sla_sweep, "RECOVERY_JOB_SLA_SWEEP_SECONDS", 60),
    Job("stale_claims", release_stale_claims, "RECOVERY_JOB_STALE_CLAIMS_SECONDS", 300),
    Job("needs_info_expiry", expire_needs_info, "RECOVERY_JOB_NEEDS_INFO_EXPIRY_SECONDS", 600),
    Job("retention", purge_documents, "RECOVERY_JOB_RETENTION_SECONDS", 3600),
    Job("orphans", remove_orphans, "RECOVERY_JOB_ORPHANS_SECONDS", 900),
    Job("outbox", deliver_outbox, "RECOVERY_JOB_OUTBOX_SECONDS", 30),
    Job("prechecks", run_prechecks, "RECOVERY_JOB_PRECHECKS_SECONDS", 60),
    Job("report_rollups", roll_up_reports, "RECOVERY_JOB_REPORT_ROLLUPS_SECONDS", 600),
]


def run_job(job: Job, now: datetime, holder: str | None = None) -> tuple[dict | None, str | None]:
    """Run one job in its own transaction and keep a record of it.
    Returns (result, error): a failing job is rolled back and reported, and the
    other jobs still run."""
    error = None
    started = time.monotonic()
    try:
        with unit():
            result = job.run(now)
    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the others
        current_app.logger.exception("scheduler job %s failed", job.name)
        result, error = None, f"{type(exc).__name__}: {exc}"[:1000]
    with unit():
        db.session.add(
            JobRun(
                job=job.name,
                holder=holder,
                started_at=now,
                finished_at=now + timedelta(seconds=time.monotonic() - started),
                result=result or {},
                error=error,
            )
        )
    return result, error
