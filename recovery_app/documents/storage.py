"""Where identity documents live: encrypted blobs under random names.

* Bytes are encrypted with AES-GCM (``recovery_app.vault``) bound to their
  storage key, so a blob renamed onto another document does not decrypt.
* Names are random (``secrets``); the seller's file name never reaches the disk.
* Writing is two-phase: ``stage`` writes ``<key>.tmp``; ``commit_staged`` moves
  it into place only after the database commit succeeded; ``discard_staged``
  removes it when the commit failed. A crash in between leaves only a
  ``.tmp`` file, which ``remove_orphans`` deletes once it is old.
* A staged file can also wait, under its temporary name, for the seller's next
  try after a form error (``recovery_app.recovery.kept``): ``staged_file`` names
  it again and ``read_staged`` opens it. ``remove_orphans`` deletes it after an
  hour like any other leftover.
* The folder is never a static path: documents are read only through
  ``read`` by an authorised route.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from flask import current_app

from .. import vault

TMP_SUFFIX = ".tmp"
BLOB_SUFFIX = ".bin"


class StorageError(RuntimeError):
    pass


@dataclass
class StagedFile:
    storage_key: str
    key_id: str
    sha256: str
    size: int
    tmp_path: Path
    final_path: Path

    def row(
        self,
        *,
        case_id: int,
        round: int,  # noqa: A002 - the column's name
        side: str,
        content_type: str,
        display_name: str,
        created_at: datetime,
        width: int | None = None,
        height: int | None = None,
        pages: int | None = None,
    ):
        """The Document row that records this file on a case (the column is called ``round``)."""
        from ..models import Document

        return Document(
            case_id=case_id,
            round=round,
            side=side,
            storage_key=self.storage_key,
            key_id=self.key_id,
            sha256=self.sha256,
            size=self.size,
            content_type=content_type,
            width=width,
            height=height,
            pages=pages,
            display_name=display_name,
            created_at=created_at,
        )


def upload_dir() -> Path:
    path = Path(current_app.config["RECOVERY_UPLOAD_DIR"])
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _path_for(storage_key: str) -> Path:
    if not storage_key.isalnum():  # keys are generated here; anything else is tampering
        raise StorageError("invalid storage key")
    return upload_dir() / storage_key[:2] / f"{storage_key}{BLOB_SUFFIX}"


def _context(storage_key: str) -> bytes:
    return f"document:{storage_key}".encode()


def stage(clean_bytes: bytes) -> StagedFile:
    """Encrypt ``clean_bytes`` and write them under a temporary name."""
    storage_key = secrets.token_hex(20)
    blob, key_id = vault.encrypt(clean_bytes, _context(storage_key))
    final_path = _path_for(storage_key)
    final_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp_path = final_path.with_suffix(TMP_SUFFIX)
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    return StagedFile(
        storage_key, key_id, hashlib.sha256(clean_bytes).hexdigest(), len(clean_bytes), tmp_path, final_path
    )


def commit_staged(files: list[StagedFile]) -> None:
    for staged in files:
        os.replace(staged.tmp_path, staged.final_path)


def discard_staged(files: list[StagedFile]) -> None:
    for staged in files:
        staged.tmp_path.unlink(missing_ok=True)


def staged_file(storage_key: str, key_id: str, sha256: str, size: int) -> StagedFile:
    """A file staged by an earlier request, named by what ``stage`` returned then."""
    final_path = _path_for(storage_key)
    return StagedFile(storage_key, key_id, sha256, size, final_path.with_suffix(TMP_SUFFIX), final_path)


def read_staged(staged: StagedFile) -> bytes | None:
    """The clean bytes of a staged file, or None when it is gone (removed as an
    orphan) or does not decrypt to what was recorded."""
    try:
        blob = staged.tmp_path.read_bytes()
        clean = vault.decrypt(blob, staged.key_id, _context(staged.storage_key))
    except (FileNotFoundError, InvalidTag, vault.VaultError, ValueError):
        return None
    if hashlib.sha256(clean).hexdigest() != staged.sha256:
        return None
    return clean


def read(document) -> bytes:
    """Decrypt a stored document and check it against the hash kept in the database."""
    if document.purged_at is not None:
        raise StorageError("document was purged")
    blob = _path_for(document.storage_key).read_bytes()
    clean = vault.decrypt(blob, document.key_id, _context(document.storage_key))
    if hashlib.sha256(clean).hexdigest() != document.sha256:
        raise StorageError("document does not match its recorded hash")
    return clean


def purge(document) -> bool:
    """Overwrite, then unlink, a document's blob. True if a file was removed."""
    path = _path_for(document.storage_key)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b") as fh:
        fh.write(secrets.token_bytes(size))
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    return True


def remove_orphans(now: datetime, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete staged files left behind by a crash between write and commit."""
    removed = 0
    cutoff = now.timestamp() - older_than.total_seconds()
    for tmp in upload_dir().glob(f"*/*{TMP_SUFFIX}"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
