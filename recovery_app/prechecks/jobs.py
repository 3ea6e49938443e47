"""The scheduler job that runs pre-checks after submission, so intake stays fast.

``run_pending(now)``:

1. discovers, in one INSERT ... SELECT, every open case whose newest round of
   documents has no run yet (the unique (case, round) key makes a second
   runner's insert a no-op);
2. claims a batch with one conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL): due pending runs, and running ones whose lease ran out;
3. examines each case's documents outside any write transaction (the slow
   part: OCR, faces, hashes), then stores the results with the run's verdict in
   one short transaction, if the claim is still its own. A check that raises rolls that transaction back; the run keeps
   the error and is tried again later with a growing pause, then given up as
   ``failed``. The case itself stays as it was and can be worked.

Each run also removes the personal data read from documents (the MRZ fields)
once retention has purged those documents; verdicts and hashes stay.

Run twice, it does nothing the second time.

``work()`` is the same, one case at a time, for ``flask prechecks work``:
any number of worker processes, beside the scheduler's job, each claiming
the next pending case (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite
the claim is a conditional UPDATE under the write lock, and the lease makes a
case whose worker died claimable again).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, literal, or_, select, update

from ..database import as_reader
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
    claimed = _claim(now, token, current_app.config["RECOVERY_PRECHECK_BATCH"])
    db.session.commit()
    counts = {"discovered": discovered, "claimed": len(claimed), "done": 0, "retried": 0, "failed": 0}
    for run_id in claimed:
        outcome = _run_one(run_id, token, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    counts["scrubbed"] = services.scrub_purged(now)
    db.session.commit()
    return counts


def work(
    clock: Callable[[], datetime],
    *,
    once: bool = False,
    idle_seconds: float = 5.0,
    stop: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """Claim and run pending cases one at a time until ``stop()`` (or, with
    ``once``, until none is pending). Returns the counts."""
    counts = {"discovered": 0, "claimed": 0, "done": 0, "retried": 0, "failed": 0}
    while not stop():
        now = clock()
        counts["discovered"] += _discover(now)
        token = secrets.token_hex(16)
        claimed = _claim(now, token, 1)
        db.session.commit()
        if not claimed:
            if once:
                break
            time.sleep(idle_seconds)
            continue
        counts["claimed"] += 1
        outcome = _run_one(claimed[0], token, now)
        counts[outcome] = counts.get(outcome, 0) + 1
        say(f"run {claimed[0]}: {outcome}")
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
        _insert().from_select(columns, missing).on_conflict_do_nothing().returning(PrecheckRun.id)
    )
    return len(inserted.all())


def _claim(now: datetime, token: str, limit: int) -> list[int]:
    config = current_app.config
    due = (
        select(PrecheckRun.id)
        .where(
            or_(
                and_(PrecheckRun.status == "pending", PrecheckRun.next_try_at <= now),
                and_(PrecheckRun.status == "running", PrecheckRun.lease_until < now),
            )
        )
        .order_by(PrecheckRun.next_try_at, PrecheckRun.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    db.session.execute(
        update(PrecheckRun)
        .where(PrecheckRun.id.in_(due.scalar_subquery()))
        .values(
            status="running",
            claim_token=token,
            attempts=PrecheckRun.attempts + 1,
            lease_until=now + timedelta(minutes=config["RECOVERY_PRECHECK_LEASE_MINUTES"]),
        )
        .execution_options(synchronize_session=False)
    )
    return list(
        db.session.execute(
            select(PrecheckRun.id).where(PrecheckRun.claim_token == token).order_by(PrecheckRun.id)
        ).scalars()
    )


def _run_one(run_id: int, token: str, now: datetime) -> str:
    try:
        with as_reader():  # a deferred BEGIN on SQLite: the write lock stays free while OCR runs
            run = db.session.get(PrecheckRun, run_id)
            case, round_ = db.session.get(Case, run.case_id), run.round
            examined = services.examine(case, round_)
            db.session.commit()  # ends the read snapshot; nothing was written
        case = db.session.get(Case, case.id)
        verdict = services.record(case, examined, now)
        finished = db.session.execute(
            update(PrecheckRun)
            .where(PrecheckRun.id == run_id, PrecheckRun.claim_token == token, PrecheckRun.status == "running")
            .values(
                status="done", verdict=verdict, finished_at=now, last_error=None, lease_until=None, claim_token=None
            )
            .execution_options(synchronize_session=False)
        )
        if finished.rowcount != 1:  # the lease ran out and another worker took the case: its results stand
            db.session.rollback()
            return "lost"
        db.session.commit()
        return "done"
    except Exception as exc:  # noqa: BLE001 - any failure of a check is kept on the run and retried
        db.session.rollback()
        return _record_failure(run_id, token, f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT], now)


def _record_failure(run_id: int, token: str, error: str, now: datetime) -> str:
    """Keep the error on the run and put it back for a later try (or give up
    after the last attempt), if this worker still holds it: a worker whose
    lease ran out may fail after another took the run over and finished it,
    and that result stands."""
    config = current_app.config
    attempts = db.session.execute(select(PrecheckRun.attempts).where(PrecheckRun.id == run_id)).scalar_one()
    if attempts >= config["RECOVERY_PRECHECK_MAX_ATTEMPTS"]:
        values, outcome = {"status": "failed", "finished_at": now}, "failed"
    else:
        pause = timedelta(minutes=config["RECOVERY_PRECHECK_RETRY_MINUTES"]) * 2 ** (attempts - 1)
        values, outcome = {"status": "pending", "next_try_at": now + pause}, "retried"
    kept = db.session.execute(
        update(PrecheckRun)
        .where(PrecheckRun.id == run_id, PrecheckRun.claim_token == token, PrecheckRun.status == "running")
        .values(last_error=error, lease_until=None, claim_token=None, **values)
        .execution_options(synchronize_session=False)
    )
    if kept.rowcount != 1:
        db.session.rollback()
        return "lost"
    db.session.commit()
    return outcome
