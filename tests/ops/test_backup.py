"""A backup restored into a fresh database and an empty upload folder gives
back every case, its documents (decrypting to their hashes) and an audit
chain that verifies; a restore never writes over a database in use."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import tarfile
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from recovery_app import audit, create_app
from recovery_app.extensions import db
from recovery_app.models.base import utcnow
from recovery_app.ops import backup
from recovery_app.ops.backup import table_names
from tests.factories import Factory, jpeg_bytes, png_bytes
from tests.helpers import base_config


@contextmanager
def fresh_database(database_url: str, tmp_path):
    """An empty database beside the test one: a new PostgreSQL database, or a new SQLite file."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'restored' / 'recovery.db'}"
        return
    name = f"{make_url(database_url).database}_restore_{secrets.token_hex(4)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def filled(live_app):
    """Cases with documents and an audit chain, committed."""
    with live_app.app_context():
        make = Factory(live_app)
        keys = []
        for n in range(3):
            case = make.case()
            keys.append(make.document(case, jpeg_bytes(), side="front").sha256)
            keys.append(make.document(case, png_bytes(seed=n), side="back", content_type="image/png").sha256)
            audit.record(
                "case.note",
                now=utcnow(),
                subject_type="case",
                subject_id=case.id,
                details={"n": n},
                address="203.0.113.7",
                browser="test",
            )
        db.session.commit()
        entries = audit.verify().checked
    return live_app, keys, entries


def test_backup_restores_into_a_fresh_database_and_verifies(filled, database_url, tmp_path):
    source_app, hashes, entries = filled
    backup_dir = tmp_path / "backup"
    made = source_app.test_cli_runner().invoke(args=["backup", "create", str(backup_dir)])
    assert made.exit_code == 0, made.output
    assert "and 6 documents" in made.output
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted(
        [
            "manifest.json",
            "documents.tar",
            "database.pgdump" if database_url.startswith("postgresql") else "database.sqlite3",
        ]
    )

    with fresh_database(database_url, tmp_path) as fresh_url:
        restored_app = create_app(base_config(fresh_url, tmp_path / "restored"))
        try:
            runner = restored_app.test_cli_runner()
            restored = runner.invoke(args=["backup", "restore", str(backup_dir)])
            assert restored.exit_code == 0, restored.output

            verified = runner.invoke(args=["audit", "verify"])
            assert verified.exit_code == 0, verified.output
            assert f"audit chain intact: {entries} entries" in verified.output

            checked = runner.invoke(args=["backup", "check"])
            assert checked.exit_code == 0, checked.output
            assert "6 documents checked: 0 missing, 0 damaged, 0 files without a document" in checked.output

            with restored_app.app_context():
                from recovery_app.models import Document

                assert sorted(d.sha256 for d in db.session.query(Document)) == sorted(hashes)

            again = runner.invoke(args=["backup", "restore", str(backup_dir)])
            assert again.exit_code != 0 and "fresh, empty database" in again.output
        finally:
            with restored_app.app_context():
                db.engine.dispose()


def test_a_damaged_backup_is_not_restored(filled, database_url, tmp_path):
    source_app, _hashes, _entries = filled
    backup_dir = tmp_path / "backup"
    assert source_app.test_cli_runner().invoke(args=["backup", "create", str(backup_dir)]).exit_code == 0
    archive = backup_dir / "documents.tar"
    data = bytearray(archive.read_bytes())
    data[600] ^= 0xFF
    archive.write_bytes(bytes(data))
    with fresh_database(database_url, tmp_path) as fresh_url:
        restored_app = create_app(base_config(fresh_url, tmp_path / "restored"))
        try:
            result = restored_app.test_cli_runner().invoke(args=["backup", "restore", str(backup_dir)])
            assert result.exit_code != 0 and "documents.tar is missing or damaged" in result.output
            assert not (tmp_path / "restored" / "uploads").exists()
            assert table_names(fresh_url) == []
        finally:
            with restored_app.app_context():
                db.engine.dispose()


def _escaping_archive(backup_dir):
    """documents.tar with one more member that climbs out of the folder, its digest put right."""
    with tarfile.open(backup_dir / "documents.tar", "a") as archive:
        member = tarfile.TarInfo("../escape.bin")
        member.size = 4
        archive.addfile(member, io.BytesIO(b"boom"))
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    manifest["files"]["documents.tar"] = hashlib.sha256((backup_dir / "documents.tar").read_bytes()).hexdigest()
    (backup_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "spoil, message",
    [
        (_escaping_archive, "unexpected entry in documents.tar"),
        (lambda d: (d / "manifest.json").write_text("{nope"), "cannot be read"),
        (lambda d: (d / "manifest.json").write_text("[]"), "is not 1"),
        (lambda d: (d / "manifest.json").write_bytes(b"\xff\xfe"), "cannot be read"),
        (lambda d: (d / "manifest.json").write_text('{"format": 1, "files": null}'), "does not list"),
        (lambda d: (d / "manifest.json").write_text('{"format": 1, "database": "sqlite"}'), "does not list"),
    ],
    ids=["escaping-member", "not-json", "a-list", "not-utf8", "files-null", "no-files"],
)
def test_a_spoiled_backup_is_refused_before_anything_is_restored(filled, database_url, tmp_path, spoil, message):
    source_app, _hashes, _entries = filled
    backup_dir = tmp_path / "backup"
    assert source_app.test_cli_runner().invoke(args=["backup", "create", str(backup_dir)]).exit_code == 0
    spoil(backup_dir)
    with fresh_database(database_url, tmp_path) as fresh_url:
        restored_app = create_app(base_config(fresh_url, tmp_path / "restored"))
        try:
            result = restored_app.test_cli_runner().invoke(args=["backup", "restore", str(backup_dir)])
            assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
            assert table_names(fresh_url) == [] and not (tmp_path / "restored" / "uploads").exists()
        finally:
            with restored_app.app_context():
                db.engine.dispose()


def test_a_missing_blob_fails_the_check(filled, tmp_path):
    source_app, _hashes, _entries = filled
    with source_app.app_context():
        from pathlib import Path

        blob = next(Path(source_app.config["RECOVERY_UPLOAD_DIR"]).glob("*/*.bin"))
        blob.unlink()
    result = source_app.test_cli_runner().invoke(args=["backup", "check"])
    assert result.exit_code == 1 and "1 missing, 0 damaged" in result.output


def test_backup_refuses_an_existing_folder(filled, tmp_path):
    source_app, _hashes, _entries = filled
    (tmp_path / "backup").mkdir()
    result = source_app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "backup")])
    assert result.exit_code == 1 and "exists already: a backup goes into a new folder" in result.output


def test_backup_into_a_place_it_cannot_write_says_so(filled, tmp_path):
    source_app, _hashes, _entries = filled
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = source_app.test_cli_runner().invoke(args=["backup", "create", str(blocked / "backup")])
    assert result.exit_code == 1 and f"cannot create {blocked / 'backup'}" in result.output
    assert not isinstance(result.exception, OSError)


def test_a_backup_that_fails_half_way_says_so_and_leaves_no_folder_behind(filled, tmp_path, monkeypatch):
    source_app, _hashes, _entries = filled

    def disk_full(_path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup, "_sha256", disk_full)  # the last step, after the dump and the archive
    result = source_app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "backup")])
    assert result.exit_code == 1 and "the backup failed" in result.output and "No space left" in result.output
    assert not (tmp_path / "backup").exists()
