"""Passkeys (WebAuthn, through py_webauthn): the one place that starts and checks
passkey ceremonies.

* The relying party is the product's own address: its ID is the host of
  ``RECOVERY_BASE_URL`` and the only origin accepted is that URL's scheme, host
  and port. The browser writes the page's origin into the client data the
  authenticator signs, and the authenticator only answers for its own relying
  party, so a copy of the sign-in page on another site gets nothing it can use:
  that is what makes a passkey resistant to phishing, where a code typed into
  the copy would be replayed at once.
* User verification (the device's PIN, fingerprint or face) is required when a
  passkey is added and every time it is used.
* Each challenge is 32 random bytes (``secrets``), kept server-side for
  ``RECOVERY_PASSKEY_CHALLENGE_SECONDS``, bound to one user, one purpose and one
  browser (its session holds the row id), and consumed by one
  ``DELETE … RETURNING`` before the answer is checked, so it works once whatever
  the outcome and two requests cannot both take it.
* Signature counters: when the authenticator keeps one, each use must show a
  higher value than the last. One that does not move forward means the key may
  have been copied; the use is refused (the caller records it). The counter
  moves in one conditional ``UPDATE``, so two uses racing with one value cannot
  both pass.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import ipaddress
import secrets
import struct
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import bindparam, delete, or_, select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..extensions import db
from ..models import Passkey, PasskeyChallenge

PURPOSES = ("sign_in", "fresh", "register")
# What checking an answer raises when the answer cannot be taken apart: the
# library's own errors, and those of the formats it reads on the way (CBOR,
# ASN.1 certificates, TPM structures, base64, key numbers). Any of them means
# the answer is refused, never a server error.
_UNREADABLE = (WebAuthnException, ValueError, KeyError, IndexError, TypeError, binascii.Error, struct.error)
CHALLENGE_BYTES = 32
MAX_CREDENTIAL_JSON = 20_000  # a real answer is a few kilobytes


class PasskeyError(Exception):
    """A ceremony that did not pass. ``reason``: ``malformed`` (not a WebAuthn
    answer at all), ``expired`` (no live challenge for it: used, too old or never
    issued), ``unknown`` (not a passkey of this user), ``invalid`` (wrong origin,
    relying party, signature, no user verification…), ``counter`` (the signature
    counter did not move forward) or ``duplicate`` (already added)."""

    def __init__(self, reason: str, *, passkey: Passkey | None = None, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.passkey = passkey
        self.detail = detail


# --- the relying party ------------------------------------------------------------


def relying_party() -> tuple[str, str]:
    """(RP ID, the one accepted origin), both from ``RECOVERY_BASE_URL``."""
    parts = urlsplit(current_app.config["RECOVERY_BASE_URL"])
    host = (parts.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return host, f"{parts.scheme}://{host}{port}"


def available() -> bool:
    """Browsers refuse passkeys for a bare IP address: then none can be added."""
    host, _origin = relying_party()
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _user_handle(user) -> bytes:
    """An opaque, stable handle for the authenticator: never the e-mail or the row id."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"passkey-user:{user.id}".encode(), hashlib.sha256).digest()


# --- the user's passkeys ----------------------------------------------------------


# Built once: every sign-in asks whether the user has passkeys.
_PASSKEYS_OF = select(Passkey).where(Passkey.user_id == bindparam("user_id")).order_by(Passkey.created_at, Passkey.id)


def passkeys_of(user) -> list[Passkey]:
    return db.session.execute(_PASSKEYS_OF, {"user_id": user.id}).scalars().all()


def passkey_of(user, passkey_id: int | None) -> Passkey | None:
    if passkey_id is None:
        return None
    passkey = db.session.get(Passkey, passkey_id)
    return passkey if passkey is not None and passkey.user_id == user.id else None


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=p.credential_id,
            transports=[AuthenticatorTransport(t) for t in (p.transports or "").split(",") if t in known] or None,
        )
        for p in passkeys
    ]


# --- challenges ---------------------------------------------------------------------


def _new_challenge(user, purpose: str, now: datetime, replacing=None) -> PasskeyChallenge:
    """A fresh challenge for ``purpose``. The one this browser held before
    (``replacing``) and the user's expired ones go; other browsers' live
    challenges stay, so signing in on a phone does not break the laptop's."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown passkey purpose {purpose!r}")
    stale = PasskeyChallenge.expires_at <= now
    if isinstance(replacing, int):
        stale = or_(stale, PasskeyChallenge.id == replacing)
    db.session.execute(
        delete(PasskeyChallenge)
        .where(PasskeyChallenge.user_id == user.id, stale)
        .execution_options(synchronize_session=False)
    )
    seconds = current_app.config["RECOVERY_PASSKEY_CHALLENGE_SECONDS"]
    row = PasskeyChallenge(
        user_id=user.id,
        purpose=purpose,
        challenge=secrets.token_bytes(CHALLENGE_BYTES),
        created_at=now,
        expires_at=now + timedelta(seconds=seconds),
    )
    db.session.add(row)
    db.session.flush()
    return row


def _take_challenge(user, purpose: str, challenge_id, now: datetime) -> bytes:
    """Consume the challenge this browser was given: one DELETE … RETURNING, so it
    is gone whatever happens next and a second request finds nothing."""
    if not isinstance(challenge_id, int):
        raise PasskeyError("expired")
    taken = db.session.execute(
        delete(PasskeyChallenge)
        .where(
            PasskeyChallenge.id == challenge_id,
            PasskeyChallenge.user_id == user.id,
            PasskeyChallenge.purpose == purpose,
        )
        .returning(PasskeyChallenge.challenge, PasskeyChallenge.expires_at)
        .execution_options(synchronize_session=False)
    ).first()
    if taken is None:
        raise PasskeyError("expired")
    challenge, expires_at = taken
    if now >= expires_at:
        raise PasskeyError("expired")
    return bytes(challenge)


def _timeout_ms() -> int:
    return current_app.config["RECOVERY_PASSKEY_CHALLENGE_SECONDS"] * 1000


# --- adding a passkey ---------------------------------------------------------------------


def registration_options(user, now: datetime, replacing=None) -> tuple[int, str]:
    """(challenge id for the session, options JSON for ``navigator.credentials.create``)."""
    rp_id, _origin = relying_party()
    row = _new_challenge(user, "register", now, replacing)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=current_app.config["RECOVERY_PRODUCT_NAME"],
        user_id=_user_handle(user),
        user_name=user.email,
        user_display_name=user.display_name or user.email,
        challenge=row.challenge,
        timeout=_timeout_ms(),
        exclude_credentials=_descriptors(passkeys_of(user)),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED
        ),
    )
    return row.id, options_to_json(options)


def register(user, challenge_id, credential_json: str, name: str, now: datetime) -> Passkey:
    """Check the browser's answer to ``registration_options`` and keep the new passkey."""
    credential = _parsed(credential_json, parse_registration_credential_json)
    challenge = _take_challenge(user, "register", challenge_id, now)
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
        # A key that cannot be loaded (an RSA modulus of 0, say) would make
        # every later sign-in with it fail: it is refused now instead.
        decoded_public_key_to_cryptography(decode_credential_public_key(verified.credential_public_key))
    except _UNREADABLE as exc:
        raise PasskeyError("invalid", detail=f"{type(exc).__name__}: {exc}"[:200]) from None
    if db.session.execute(select(Passkey.id).where(Passkey.credential_id == verified.credential_id)).first():
        raise PasskeyError("duplicate")
    transports = ",".join(t.value for t in (credential.response.transports or []))[:100]
    passkey = Passkey(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
        name=name,
        created_at=now,
    )
    db.session.add(passkey)
    db.session.flush()
    return passkey


# --- using a passkey -----------------------------------------------------------------------


def authentication_options(user, purpose: str, now: datetime, replacing=None) -> tuple[int, str]:
    """(challenge id for the session, options JSON for ``navigator.credentials.get``)."""
    rp_id, _origin = relying_party()
    row = _new_challenge(user, purpose, now, replacing)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=row.challenge,
        timeout=_timeout_ms(),
        allow_credentials=_descriptors(passkeys_of(user)),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return row.id, options_to_json(options)


def authenticate(user, purpose: str, challenge_id, credential_json: str, now: datetime) -> Passkey:
    """Check the browser's answer to ``authentication_options``; the passkey used, or ``PasskeyError``."""
    credential = _parsed(credential_json, parse_authentication_credential_json)
    challenge = _take_challenge(user, purpose, challenge_id, now)
    passkey = db.session.execute(
        select(Passkey).where(Passkey.credential_id == credential.raw_id, Passkey.user_id == user.id)
    ).scalar_one_or_none()
    if passkey is None:
        raise PasskeyError("unknown")
    rp_id, origin = relying_party()
    try:
        # The counter is checked below, after the signature, and in SQL: a
        # counter error is then only ever reported for a genuine signature.
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except _UNREADABLE as exc:
        raise PasskeyError("invalid", passkey=passkey, detail=f"{type(exc).__name__}: {exc}"[:200]) from None
    new = verified.new_sign_count
    # An authenticator without a counter always says 0, and may go on doing so.
    forward = Passkey.sign_count < new if new else Passkey.sign_count == 0
    moved = db.session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, forward)
        .values(sign_count=new, last_used_at=now)
        .returning(Passkey.id)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.refresh(passkey)
    if moved is None:
        raise PasskeyError("counter", passkey=passkey, detail=f"{new} after {passkey.sign_count}")
    return passkey


def remove(user, passkey_id: int) -> Passkey | None:
    """Delete one passkey of ``user``; returns what was removed (None when it was not theirs or gone)."""
    passkey = passkey_of(user, passkey_id)
    if passkey is None:
        return None
    db.session.delete(passkey)
    db.session.flush()
    return passkey


def remove_all(user) -> int:
    """Every passkey and open challenge of ``user`` (turning 2SV off, an approved recovery)."""
    db.session.execute(
        delete(PasskeyChallenge).where(PasskeyChallenge.user_id == user.id).execution_options(synchronize_session=False)
    )
    return db.session.execute(
        delete(Passkey).where(Passkey.user_id == user.id).execution_options(synchronize_session=False)
    ).rowcount


def _parsed(credential_json: str, parse):
    if not isinstance(credential_json, str) or not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise PasskeyError("malformed")
    try:
        return parse(credential_json)
    except _UNREADABLE:  # InvalidJSONStructure among them
        raise PasskeyError("malformed") from None
