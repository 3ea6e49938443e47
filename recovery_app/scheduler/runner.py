"""The runner: waits for the single-runner lock, then runs every registered
job on its interval with APScheduler, renewing the lock (and the heartbeat)
as it goes. A runner that loses the lock stops its jobs and stands by again.

APScheduler keeps its jobs in memory: one job store is never shared between
processes (APScheduler's own advice); the database lock decides who runs.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from ..extensions import db
from ..models.base import utcnow
from . import jobs
from .lock import lock_for


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Runner:
    def __init__(self, app: Flask, *, holder: str | None = None, say: Callable[[str], None] | None = None):
        self.app = app
        self.holder = holder or holder_name()
        self.say = say or app.logger.info
        self.stop_event = threading.Event()
        self.leading = threading.Event()
        with app.app_context():
            self.lock = lock_for(self.holder)

    def _config(self, name: str) -> int:
        return int(self.app.config[name])

    def run(self) -> None:
        """Block until ``stop()``: stand by, lead when the lock is free."""
        said_standby = False
        try:
            while not self.stop_event.is_set():
                with self.app.app_context():
                    try:
                        got = self.lock.acquire(utcnow())
                    except Exception:  # noqa: BLE001 - a database hiccup: try again later
                        self.app.logger.exception("scheduler could not reach the database")
                        db.session.rollback()
                        got = False
                    finally:
                        db.session.remove()
                if got:
                    said_standby = False
                    self._lead()
                    continue
                if not said_standby:
                    self.say(f"standby: another runner holds the scheduler lock; {self.holder} waits to take over")
                    said_standby = True
                self.stop_event.wait(self._config("RECOVERY_SCHEDULER_STANDBY_POLL_SECONDS"))
        finally:
            with self.app.app_context():
                self.lock.release()
                db.session.remove()

    def _lead(self) -> None:
        self.say(f"{self.holder} holds the scheduler lock and runs the jobs")
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(1)},  # jobs one after another: no self-contention
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        with self.app.app_context():
            for job in jobs.JOBS:
                scheduler.add_job(
                    self._run_job,
                    IntervalTrigger(seconds=job.interval_seconds()),
                    args=[job],
                    id=job.name,
                    next_run_time=utcnow(),
                )
        scheduler.start()
        self.leading.set()
        try:
            while not self.stop_event.wait(self._config("RECOVERY_SCHEDULER_HEARTBEAT_SECONDS")):
                with self.app.app_context():
                    try:
                        kept = self.lock.renew(utcnow())
                    except Exception:  # noqa: BLE001
                        self.app.logger.exception("scheduler could not renew its lock")
                        db.session.rollback()
                        kept = False
                    finally:
                        db.session.remove()
                if not kept:
                    self.say(f"{self.holder} lost the scheduler lock; standing by")
                    break
        finally:
            self.leading.clear()
            scheduler.shutdown(wait=True)
            with self.app.app_context():
                self.lock.release()
                db.session.remove()

    def _run_job(self, job: jobs.Job) -> None:
        if not self.leading.is_set():
            return
        with self.app.app_context():
            try:
                jobs.run_job(job, utcnow(), holder=self.holder)
            finally:
                db.session.remove()

    def stop(self) -> None:
        self.stop_event.set()


_started: dict[int, Runner] = {}
_start_lock = threading.Lock()


def start_in_background(app: Flask) -> Runner:
    """Start this process's runner thread once (it stands by if another holds the lock)."""
    with _start_lock:
        runner = _started.get(id(app))
        if runner is None:
            runner = _started[id(app)] = Runner(app)
            threading.Thread(target=runner.run, name="recovery-scheduler", daemon=True).start()
        return runner
