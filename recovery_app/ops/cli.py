"""``flask backup``: back up, restore into a fresh place, check the documents."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..database import unit
from ..models.base import utcnow
from . import backup

backup_cli = AppGroup("backup", help="Backups of the database and the documents.")


def _places() -> dict:
    return {
        "database_url": current_app.config["SQLALCHEMY_DATABASE_URI"],
        "upload_dir": Path(current_app.config["RECOVERY_UPLOAD_DIR"]),
    }


@backup_cli.command("create")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
def create(target: Path):
    """Back up the database and the documents into TARGET (a new folder)."""
    try:
        manifest = backup.create(target, now=utcnow(), **_places())
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"backed up the {manifest['database']} database (revision {manifest['revision']}) "
        f"and {manifest['documents']} documents into {target}"
    )


@backup_cli.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore(source: Path):
    """Restore SOURCE into this app's database and upload folder, which must be fresh and empty."""
    try:
        manifest = backup.restore(source, **_places())
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"restored the backup of {manifest['created_at']} ({manifest['documents']} documents); "
        "now run 'flask audit verify' and 'flask backup check'"
    )


@backup_cli.command("check")
def check():
    """Every document decrypts to its recorded hash and no blob is left over; exit 1 otherwise."""
    with unit(write=False):
        result = backup.check_documents()
    click.echo(
        f"{result['checked']} documents checked: {len(result['missing'])} missing, "
        f"{len(result['damaged'])} damaged, {len(result['orphans'])} files without a document"
    )
    if result["missing"] or result["damaged"]:
        click.echo(f"missing: {result['missing'][:20]} damaged: {result['damaged'][:20]}", err=True)
        raise SystemExit(1)
