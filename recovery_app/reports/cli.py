"""``flask reports``: keep the reports' daily rollups."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..database import unit
from ..models.base import utcnow
from . import rollups

reports_cli = AppGroup("reports", help="The managers' reports.")


@reports_cli.command("rebuild")
def rebuild():
    """Recompute the daily rollups from the cases, from the first case to a few
    minutes ago (after loading demo or older data, or to repair them); one transaction."""
    with unit():
        rollups.rebuild(utcnow())
        found = rollups.marks()
    for zone, mark in found.items():
        click.echo(
            f"{zone}: rolled up from {mark.rolled_from:%Y-%m-%d %H:%M} to {mark.rolled_until:%Y-%m-%d %H:%M} UTC"
        )
