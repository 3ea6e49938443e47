"""Secrets at rest: AES-GCM, bound to their context, rotatable by key id."""

import pytest
from cryptography.exceptions import InvalidTag

from recovery_app import vault


def test_round_trip_and_context_binding(app):
    blob, key_id = vault.encrypt(b"JBSWY3DPEHPK3PXP", b"totp:1")
    assert b"JBSWY3DPEHPK3PXP" not in blob
    assert vault.decrypt(blob, key_id, b"totp:1") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(InvalidTag):
        vault.decrypt(blob, key_id, b"totp:2")  # a seed moved to another user does not decrypt


def test_unknown_key_id_is_reported(app):
    blob, _ = vault.encrypt(b"x", b"c")
    with pytest.raises(vault.VaultError):
        vault.decrypt(blob, "k-gone", b"c")
