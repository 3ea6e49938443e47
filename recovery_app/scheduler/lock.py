"""Exactly one runner at a time, decided by the database.

PostgreSQL: a session-level advisory lock taken on a connection the runner
keeps for as long as it leads; if the process dies, PostgreSQL ends the
session and the lock is free at once. (Session-level: it does not survive a
transaction-pooling PgBouncer, so the runner connects directly.)

SQLite: the ``scheduler_lease`` row, taken and renewed with one conditional
UPDATE; a holder that stops renewing loses it when ``expires_at`` passes.

Either way the holder records its heartbeat in ``scheduler_lease.heartbeat_at``
for ``/healthz``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ..database import advisory_key, unit
from ..extensions import db
from ..models import SchedulerLease

LEASE_NAME = "scheduler"
ADVISORY_KEY = advisory_key("scheduler")  # for pg_try_advisory_lock


def _ensure_row() -> None:
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(SchedulerLease).values(name=LEASE_NAME).on_conflict_do_nothing())


class LeaseLock:
    """The SQLite lease: held while ``expires_at`` is in the future and renewed."""

    def __init__(self, holder: str):
        self.holder = holder
        self.held = False

    def acquire(self, now: datetime) -> bool:
        lease = timedelta(seconds=current_app.config["RECOVERY_SCHEDULER_LEASE_SECONDS"])
        with unit():
            _ensure_row()
            taken = db.session.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == LEASE_NAME,
                    or_(
                        SchedulerLease.holder == self.holder,
                        SchedulerLease.holder.is_(None),
                        SchedulerLease.expires_at.is_(None),
                        SchedulerLease.expires_at < now,
                    ),
                )
                .values(holder=self.holder, expires_at=now + lease, heartbeat_at=now),
                execution_options={"synchronize_session": False},
            ).rowcount
        self.held = taken == 1
        return self.held

    renew = acquire

    def release(self) -> None:
        if self.held:
            with unit():
                db.session.execute(
                    update(SchedulerLease)
                    .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == self.holder)
                    .values(holder=None, expires_at=None),
                    execution_options={"synchronize_session": False},
                )
        self.held = False


class AdvisoryLock:
    """PostgreSQL: ``pg_try_advisory_lock`` on a connection kept by the holder."""

    def __init__(self, holder: str):
        self.holder = holder
        self.held = False
        self._connection = None

    def acquire(self, now: datetime) -> bool:
        if not self.held:
            connection = db.engine.connect()
            try:
                got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar()
                connection.commit()  # the lock belongs to the session, not to this transaction
            except Exception:
                connection.invalidate()
                connection.close()
                raise
            if not got:
                connection.close()
                return False
            self._connection = connection
            self.held = True
        return self.renew(now)

    def renew(self, now: datetime) -> bool:
        if not self.held:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except Exception:  # noqa: BLE001 - a lost connection is a lost lock
            current_app.logger.warning("scheduler lock connection lost")
            self._drop()
            return False
        with unit():
            _ensure_row()
            db.session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == LEASE_NAME)
                .values(holder=self.holder, heartbeat_at=now, expires_at=None),
                execution_options={"synchronize_session": False},
            )
        return True

    def release(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            # Invalidating closes the database session, which frees the lock
            # even if the connection would otherwise go back to the pool.
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
        self.held = False


def lock_for(holder: str) -> LeaseLock | AdvisoryLock:
    if db.engine.dialect.name == "postgresql":
        return AdvisoryLock(holder)
    return LeaseLock(holder)


def heartbeat() -> SchedulerLease | None:
    return db.session.get(SchedulerLease, LEASE_NAME)
