"""Encryption at rest (AES-256-GCM) for TOTP seeds and identity documents.

Each ciphertext is ``nonce || ciphertext+tag`` and is stored beside the id of the
key that made it, so keys can be rotated: new data uses the current key,
old data stays readable while its key is listed in ``RECOVERY_VAULT_OLD_KEYS``.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

NONCE_BYTES = 12


class VaultError(RuntimeError):
    pass


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(str(text).encode())
    except (ValueError, TypeError):
        raise VaultError("a vault key is not valid url-safe base64") from None
    if len(key) != 32:
        raise VaultError(f"a vault key must be 32 bytes (AES-256), not {len(key)}")
    return key


def old_keys(spec: str | None) -> dict[str, bytes]:
    """``RECOVERY_VAULT_OLD_KEYS``: ``id:key`` pairs, comma-separated."""
    keys = {}
    for item in (spec or "").split(","):
        if item.strip():
            key_id, _, text = item.strip().partition(":")
            if not key_id:
                raise VaultError("an old vault key has no key id (each entry is id:key)")
            keys.setdefault(key_id, decode_key(text))
    return keys


def _keys() -> dict[str, bytes]:
    config = current_app.config
    keys = old_keys(os.environ.get("RECOVERY_VAULT_OLD_KEYS"))
    keys[config["RECOVERY_VAULT_KEY_ID"]] = decode_key(config["RECOVERY_VAULT_KEY"])  # the current one wins
    return keys


def current_key_id() -> str:
    return current_app.config["RECOVERY_VAULT_KEY_ID"]


def encrypt(plaintext: bytes, context: bytes) -> tuple[bytes, str]:
    """Encrypt under the current key; ``context`` is bound as associated data."""
    key_id = current_key_id()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_keys()[key_id]).encrypt(nonce, plaintext, context)
    return nonce + sealed, key_id


def decrypt(blob: bytes, key_id: str, context: bytes) -> bytes:
    key = _keys().get(key_id)
    if key is None:
        raise VaultError(f"vault key {key_id!r} is not configured")
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
