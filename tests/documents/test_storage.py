"""Encrypted document storage: two-phase writes, hash checks, purge, orphans."""

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from recovery_app.documents import storage
from recovery_app.models import Document


def _document(staged):
    return Document(storage_key=staged.storage_key, key_id=staged.key_id, sha256=staged.sha256, size=staged.size)


def test_staged_file_is_encrypted_and_reads_back_after_commit(app):
    staged = storage.stage(b"%PDF-1.7 identity")
    assert staged.tmp_path.exists() and not staged.final_path.exists()
    storage.commit_staged([staged])
    raw = staged.final_path.read_bytes()
    assert b"identity" not in raw
    assert storage.read(_document(staged)) == b"%PDF-1.7 identity"
    assert staged.sha256 == hashlib.sha256(b"%PDF-1.7 identity").hexdigest()


def test_discarded_stage_leaves_no_file(app):
    staged = storage.stage(b"x" * 100)
    storage.discard_staged([staged])
    assert not any(Path(app.config["RECOVERY_UPLOAD_DIR"]).rglob("*.*"))


def test_blob_moved_to_another_key_does_not_decrypt(app):
    first, second = storage.stage(b"first"), storage.stage(b"second")
    storage.commit_staged([first, second])
    os.replace(first.final_path, second.final_path)
    with pytest.raises(InvalidTag):  # bound to its own name: another file's ciphertext does not decrypt
        storage.read(_document(second))


def test_purge_overwrites_and_removes(app):
    staged = storage.stage(b"secret")
    storage.commit_staged([staged])
    assert storage.purge(_document(staged)) is True
    assert not staged.final_path.exists()
    assert storage.purge(_document(staged)) is False


def test_old_orphans_are_removed_and_fresh_ones_kept(app, now):
    old, fresh = storage.stage(b"old"), storage.stage(b"fresh")
    two_hours_ago = time.time() - 7200
    os.utime(old.tmp_path, (two_hours_ago, two_hours_ago))
    from recovery_app.models.base import utcnow

    assert storage.remove_orphans(utcnow(), timedelta(hours=1)) == 1
    assert not old.tmp_path.exists() and fresh.tmp_path.exists()


def test_tampered_storage_key_is_refused(app):
    with pytest.raises(storage.StorageError):
        storage.read(Document(storage_key="../../etc/passwd", key_id="k1", sha256="", size=0))
