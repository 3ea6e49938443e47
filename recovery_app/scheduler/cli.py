"""``flask scheduler run`` and ``flask scheduler run-once [--now ISO-8601]``."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from ..models.base import utcnow
from ..reports.services import FIRST_DAY, LAST_DAY
from . import jobs
from .runner import Runner

scheduler_cli = AppGroup("scheduler", help="The SLA scheduler: run it, or run every job once.")


def parse_now(value: str | None) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    if value is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; use e.g. 2026-03-02T09:00:00Z", param_hint="--now"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        moment = None
    # The jobs add hours and days to it (due times, retention, rollups): near
    # the calendar's ends some would overflow after others had already run.
    if moment is None or not FIRST_DAY <= moment.date() <= LAST_DAY:  # the days the reports cover
        raise click.BadParameter(
            f"{value!r} is outside the times this can run at ({FIRST_DAY.year} to {LAST_DAY.year})", param_hint="--now"
        ) from None
    return moment


@scheduler_cli.command("run")
def run():
    """Run the scheduler in this process until stopped (Ctrl-C or SIGTERM).
    If another runner holds the lock, wait as a standby and take over when it stops."""
    runner = Runner(current_app._get_current_object(), say=lambda line: click.echo(line, err=False))

    def _stop(_signum, _frame):
        click.echo("stopping the scheduler…")
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.run()
    click.echo("scheduler stopped")


@scheduler_cli.command("run-once")
@click.option("--now", "now_text", metavar="ISO-8601", help="Run as if it were this time (UTC if no offset).")
def run_once(now_text):
    """Run every job once, in order, and print what each did. Jobs are
    idempotent, so this is safe beside a running scheduler without its lock:
    the outbox job claims each message before sending it, so none goes twice."""
    now = parse_now(now_text)
    click.echo(f"running every job once at {now.isoformat()}")
    failed = False
    for job in jobs.JOBS:
        result, error = jobs.run_job(job, now, holder="run-once")
        if error:
            failed = True
            click.echo(f"{job.name}: FAILED {error}")
        else:
            summary = ", ".join(f"{key} {value}" for key, value in result.items()) or "nothing to do"
            click.echo(f"{job.name}: {summary}")
    if failed:
        raise SystemExit(1)
