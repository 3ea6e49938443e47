"""Backups of the database and the documents, restored into a fresh place.

A backup is a folder:

* ``database.pgdump`` (``pg_dump --format=custom``: PostgreSQL) or
  ``database.sqlite3`` (SQLite's online backup, consistent while the app writes);
* ``documents.tar``: the encrypted blobs of the upload folder (never a staged
  ``.tmp`` file), taken *after* the database, so every document row in the
  dump has its blob unless retention purged it in between (``check`` tells);
* ``manifest.json``: when, which database, the schema revision, and the
  SHA-256 of each file, checked again before anything is restored.

The blobs stay encrypted in the backup; the vault key is not in it and must
be kept apart (docs/deploy.md). Restoring refuses a database that has tables
or an upload folder that has files: it only ever fills a fresh place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from ..extensions import db

FORMAT = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents.tar"
DUMPS = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}


class BackupError(RuntimeError):
    """The backup or the restore cannot go on; the message says why."""


def _kind(database_url: str) -> str:
    kind = make_url(database_url).get_backend_name()
    if kind not in DUMPS:
        raise BackupError(f"cannot back up a {kind} database")
    return kind


def _libpq(database_url: str) -> tuple[str, dict]:
    """The URL pg_dump understands, and the environment that carries the
    password (so that it never shows in the process list)."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], env: dict | None = None) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (Debian: postgresql-client)") from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


def _revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def create(target: Path, *, database_url: str, upload_dir: Path, now: datetime) -> dict:
    """Write a backup into ``target``, a folder that must not exist yet. A
    backup that fails half-way leaves nothing behind: the folder goes again."""
    kind = _kind(database_url)
    try:
        target.mkdir(parents=True, exist_ok=False, mode=0o700)
    except FileExistsError:
        raise BackupError(f"{target} exists already: a backup goes into a new folder") from None
    except OSError as exc:
        raise BackupError(f"cannot create {target}: {exc.strerror}") from None
    try:
        return _write(target, kind, database_url=database_url, upload_dir=upload_dir, now=now)
    except BaseException as exc:
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk, a file that cannot be read
            raise BackupError(f"the backup failed and {target} was removed: {exc}") from exc
        raise


def _write(target: Path, kind: str, *, database_url: str, upload_dir: Path, now: datetime) -> dict:
    dump = target / DUMPS[kind]
    if kind == "postgresql":
        url, env = _libpq(database_url)
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}", f"--dbname={url}"], env)
    else:
        source = sqlite3.connect(_sqlite_path(database_url))
        copy = sqlite3.connect(dump)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    blobs = 0
    with tarfile.open(target / DOCUMENTS, "w") as archive:
        if upload_dir.is_dir():
            for blob in sorted(upload_dir.glob("*/*.bin")):
                archive.add(blob, arcname=str(blob.relative_to(upload_dir)), recursive=False)
                blobs += 1
    manifest = {
        "format": FORMAT,
        "created_at": now.isoformat(),
        "database": kind,
        "revision": _revision(database_url),
        "documents": blobs,
        "files": {path.name: _sha256(path) for path in (dump, target / DOCUMENTS)},
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _read_manifest(source: Path) -> dict:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: not a backup") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{MANIFEST} in {source} cannot be read ({type(exc).__name__}): not a backup") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BackupError(f"backup format {found!r} is not {FORMAT}")
    files = manifest.get("files")
    if (
        not isinstance(files, dict)
        or not all(isinstance(name, str) and isinstance(digest, str) for name, digest in files.items())
        or manifest.get("database") not in DUMPS
        or not {DOCUMENTS, DUMPS[manifest["database"]]} <= set(files)
    ):
        raise BackupError(f"{MANIFEST} in {source} does not list the backup's files: not a backup of this kind")
    for name, digest in files.items():
        if Path(name).name != name or not (source / name).is_file() or _sha256(source / name) != digest:
            raise BackupError(f"{name} is missing or damaged (its SHA-256 differs from the manifest's)")
    return manifest


def _check_documents(source: Path) -> None:
    """Every member of the documents archive is a file of one folder level
    with a plain name; checked before anything is restored."""
    try:
        with tarfile.open(source / DOCUMENTS) as archive:
            members = archive.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{DOCUMENTS} cannot be read ({type(exc).__name__}): the backup is damaged") from None
    for member in members:
        parts = Path(member.name).parts
        if not member.isfile() or len(parts) != 2 or ".." in parts or member.name.startswith("/"):
            raise BackupError(f"unexpected entry in {DOCUMENTS}: {member.name!r}")


def table_names(database_url: str) -> list[str]:
    if _kind(database_url) == "sqlite" and not _sqlite_path(database_url).exists():
        return []  # connecting would create the file
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return inspect(connection).get_table_names()
    finally:
        engine.dispose()


def _refuse_unless_fresh(database_url: str, upload_dir: Path) -> None:
    tables = table_names(database_url)
    if tables:
        raise BackupError(
            f"the database to restore into already has {len(tables)} tables; restore only into a fresh, empty database"
        )
    if upload_dir.is_dir() and any(upload_dir.iterdir()):
        raise BackupError(f"the upload folder {upload_dir} is not empty; restore only into an empty folder")


def restore(source: Path, *, database_url: str, upload_dir: Path) -> dict:
    """Fill a fresh database and an empty upload folder from the backup in ``source``."""
    manifest = _read_manifest(source)
    kind = _kind(database_url)
    if manifest["database"] != kind:
        raise BackupError(f"this is a {manifest['database']} backup; it cannot be restored into {kind}")
    _refuse_unless_fresh(database_url, upload_dir)
    _check_documents(source)  # before the database: a restore stops before it starts, not half-way
    dump = source / DUMPS[kind]
    if kind == "postgresql":
        url, env = _libpq(database_url)
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={url}",
                str(dump),
            ],
            env,
        )
    else:
        path = _sqlite_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dump, path)
    upload_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tarfile.open(source / DOCUMENTS) as archive:
        archive.extractall(upload_dir, filter="data")
    return manifest


def check_documents() -> dict:
    """Every document not purged has its blob, which decrypts to its recorded
    SHA-256; and every blob belongs to a document. For after a restore."""
    from ..documents import storage
    from ..models import Document

    result = {"checked": 0, "missing": [], "damaged": [], "orphans": []}
    known = set()
    for document in db.session.execute(select(Document).where(Document.purged_at.is_(None))).scalars():
        known.add(document.storage_key)
        result["checked"] += 1
        try:
            storage.read(document)
        except FileNotFoundError:
            result["missing"].append(document.id)
        except Exception:  # noqa: BLE001 - a blob that does not decrypt or hash right is damaged
            result["damaged"].append(document.id)
    purged = set(db.session.execute(select(Document.storage_key).where(Document.purged_at.is_not(None))).scalars())
    for blob in storage.upload_dir().glob("*/*.bin"):
        if blob.stem not in known and blob.stem not in purged:
            result["orphans"].append(blob.name)
    return result
