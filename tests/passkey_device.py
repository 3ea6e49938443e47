"""A software passkey for tests without a browser: an ES256 key pair that answers
WebAuthn options the way a browser and an authenticator do together (client data
JSON, authenticator data, "none" attestation, signature), so the server's real
checks run on real bytes. Browser tests use chromium's own virtual authenticator.

Every answer can be bent the ways an attacker or a broken device would: another
origin or relying party, no user verification, a chosen signature counter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40
DEFAULT_ORIGIN = "http://localhost:5000"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftPasskey:
    def __init__(self, *, origin: str = DEFAULT_ORIGIN, user_verified: bool = True, sign_count: int = 0):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(16)
        self.origin = origin
        self.user_verified = user_verified
        self.sign_count = sign_count

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, options: dict, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": origin or self.origin, "crossOrigin": False}
        ).encode()

    def _flags(self, extra: int = 0) -> bytes:
        return bytes([UP | (UV if self.user_verified else 0) | extra])

    def create(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        flags: int = 0,
        fmt: str = "none",
        statement: dict | None = None,
        cose_key: bytes | None = None,
    ) -> str:
        """The JSON static/js/passkeys.js would send after ``navigator.credentials.create``;
        ``flags``, ``fmt``, ``statement`` and ``cose_key`` make a crafted one."""
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        key = cose_key if cose_key is not None else self._cose_key()
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + key
        auth_data = rp_hash + self._flags(AT | flags) + self.sign_count.to_bytes(4, "big") + attested
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": statement or {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
                "response": {
                    "clientDataJSON": b64url(self._client_data("webauthn.create", options, origin)),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal", "hybrid"],
                },
            }
        )

    def get(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        counter: int | None = None,
        flags: int = 0,
    ) -> str:
        """The JSON sent after ``navigator.credentials.get``; the counter moves on by one unless given."""
        if counter is None:
            self.sign_count += 1
            counter = self.sign_count
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = rp_hash + self._flags(flags) + counter.to_bytes(4, "big")
        client_data = self._client_data("webauthn.get", options, origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                },
            }
        )
