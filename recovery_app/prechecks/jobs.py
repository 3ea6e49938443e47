"""The scheduler job that runs pre-checks after submission, so intake stays fast.

``run_pending(now)``:

1. discovers, in one INSERT ... SELECT, every open case whose newest round of
   documents has no run yet (the unique (case, round) key makes a second
   runner's insert a no-op);
2. claims a batch with one conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL): due pending runs, and running ones whose lease ran out;
3. runs each case's checks and commits them with the run's verdict in one
   transaction. A check that raises rolls that transaction back; the run keeps
   the error and is tried again later with a growing pause, then given up as
   ``failed``. The case itself stays as it was and can be worked.

Each run also removes the personal data read from documents (the MRZ fields)
once retention has purged those documents; verdicts and hashes stay.

Run twice, it does nothing the second time.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, literal, or_, select, update

from ..extensions import db
from ..models import Case, Document
from ..models.base import UTCDateTime
from ..models.cases import OPEN_STATUSES
from ..models.prechecks import PrecheckRun
from . import services

ERROR_LIMIT = 2000


def run_pending(now: datetime) -> dict:
    discovered = _discover(now)
    token = secrets.token_hex(16)
    claimed = _claim(now, token)
    db.session.commit()
    counts = {"discovered": discovered, "claimed": len(claimed), "done": 0, "retried": 0, "failed": 0}
    for run_id in claimed:
        counts[_run_one(run_id, now)] += 1
    counts["scrubbed"] = services.scrub_purged(now)
    db.session.commit()
    return counts


def _insert():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(PrecheckRun)


def _discover(now: datetime) -> int:
    newest = (
        select(Document.case_id.label("case_id"), func.max(Document.round).label("round"))
        .join(Case, Case.id == Document.case_id)
        .where(Case.status.in_(OPEN_STATUSES), Document.purged_at.is_(None))
        .group_by(Document.case_id)
        .subquery()
    )
    moment = literal(now, UTCDateTime())
    missing = select(newest.c.case_id, newest.c.round, literal("pending"), literal(0), moment, moment).where(
        ~exists().where(PrecheckRun.case_id == newest.c.case_id, PrecheckRun.round == newest.c.round)
    )
    columns = ["case_id", "round", "status", "attempts", "next_try_at", "created_at"]
    inserted = db.session.execute(
        _insert().from_select(columns, missing).on_conflict_do_nothing().returning(PrecheckRun.id))
    return len(inserted.all())


def _claim(now: datetime, token: str) -> list[int]:
    config = current_app.config
    due = (
        select(PrecheckRun.id)
        .where(or_(
            and_(PrecheckRun.status == "pending", PrecheckRun.next_try_at <= now),
            and_(PrecheckRun.status == "running", PrecheckRun.lease_until < now),
        ))
        .order_by(PrecheckRun.next_try_at, PrecheckRun.id)
        .limit(config["RECOVERY_PRECHECK_BATCH"])
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    db.session.execute(
        update(PrecheckRun)
        .where(PrecheckRun.id.in_(due.scalar_subquery()))
        .values(status="running", claim_token=token, attempts=PrecheckRun.attempts + 1,
                lease_until=now + timedelta(minutes=config["RECOVERY_PRECHECK_LEASE_MINUTES"]))
        .execution_options(synchronize_session=False)
    )
    return list(db.session.execute(
        select(PrecheckRun.id).where(PrecheckRun.claim_token == token).order_by(PrecheckRun.id)).scalars())


def _run_one(run_id: int, now: datetime) -> str:
    run = db.session.get(PrecheckRun, run_id)
    case = db.session.get(Case, run.case_id)
    try:
        verdict = services.run_checks(case, run.round, now)
        run.status, run.verdict, run.finished_at = "done", verdict, now
        run.last_error = None
        run.lease_until = run.claim_token = None
        db.session.commit()
        return "done"
    except Exception as exc:  # noqa: BLE001 - any failure of a check is kept on the run and retried
        db.session.rollback()
        return _record_failure(run_id, f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT], now)


def _record_failure(run_id: int, error: str, now: datetime) -> str:
    config = current_app.config
    run = db.session.get(PrecheckRun, run_id)
    run.last_error = error
    run.lease_until = run.claim_token = None
    if run.attempts >= config["RECOVERY_PRECHECK_MAX_ATTEMPTS"]:
        run.status, run.finished_at = "failed", now
        outcome = "failed"
    else:
        pause = timedelta(minutes=config["RECOVERY_PRECHECK_RETRY_MINUTES"]) * 2 ** (run.attempts - 1)
        run.status, run.next_try_at = "pending", now + pause
        outcome = "retried"
    db.session.commit()
    return outcome
