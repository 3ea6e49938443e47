"""``flask prechecks work``: a worker process that runs pre-checks.

Start as many as there are cores to spare; each claims the next pending case,
so none is checked twice, and the scheduler's own pre-check job may run beside
them.
"""

from __future__ import annotations

import math
import signal

import click
from flask.cli import AppGroup

from ..models.base import utcnow

prechecks_cli = AppGroup("prechecks", help="Automatic document pre-checks.")


def _finite(_ctx, param, value: float) -> float:
    if math.isnan(value):
        raise click.BadParameter("must be a number of seconds", param=param)
    return value


@prechecks_cli.command("work")
@click.option("--once", is_flag=True, help="Stop when no case is waiting, instead of waiting for more.")
@click.option(
    "--idle-seconds",
    type=click.FloatRange(0.1, 3600.0),  # NaN passes a range check: _finite refuses it
    callback=_finite,
    default=5.0,
    show_default=True,
    help="Pause between looks for work when none is waiting.",
)
@click.option("--quiet", is_flag=True, help="Print only the totals.")
def work_command(once, idle_seconds, quiet):
    """Claim and run pending pre-checks, one case at a time, until stopped (Ctrl-C or SIGTERM)."""
    from .jobs import work  # OCR and vision libraries are heavy to load

    stopping = []

    def _stop(_signum, _frame):
        stopping.append(True)

    signal.signal(signal.SIGTERM, _stop)
    try:
        counts = work(
            utcnow,
            once=once,
            idle_seconds=idle_seconds,
            stop=lambda: bool(stopping),
            say=(lambda line: None) if quiet else click.echo,
        )
    except KeyboardInterrupt:
        click.echo("stopped")
        return
    click.echo(" ".join(f"{key}={value}" for key, value in counts.items()))
