"""Second factors: the one place that creates and checks codes.

* Authenticator apps (TOTP, RFC 6238, via pyotp): 30-second steps, ±1 step for
  clock drift, and each step accepted once per method (``last_used_step``).
* SMS and voice codes: 6 digits from ``secrets``, kept only as an HMAC bound to
  the challenge they were sent for, valid 10 minutes, 5 tries, resend after 60 s,
  at most 10 sent per hour per user.
* Recovery codes: ten single-use codes of 50 random bits, stored as argon2 hashes.
* Trusted devices: a random cookie token, stored as a SHA-256 hash, bound to
  one user and revocable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

import pyotp
from flask import current_app
from sqlalchemy import bindparam, delete, event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import vault
from ..database import core_execute, lock_row, remembered
from ..extensions import db
from ..models import RecoveryCode, SentCode, TrustedDevice, TwoFactorMethod, User
from ..notify import queue_code
from .passwords import hash_password, verify_password

TOTP_STEP = 30
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols, no look-alikes
CODES_PER_HOUR = 10
_SEPARATORS = re.compile(r"[\s\-‐‑–—−ー]")  # spaces, hyphens and dashes, the minus sign, the long-vowel mark


class CodeError(Exception):
    """A code could not be sent: ``reason`` is ``resend_too_soon`` or
    ``too_many_codes``; views turn it into a translated message with ``wait_seconds``."""

    def __init__(self, reason: str, *, wait_seconds: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait_seconds = wait_seconds


# --- input -------------------------------------------------------------------


def _typed(text: str | None) -> str:
    """What was typed, as plain ASCII where it can be: a Japanese input method
    types full-width digits, letters and dashes (１２３ ４５６, ａｂｃｄｅ－２３４５６)."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text or ""))


def normalise_code(text: str | None, digits: int = 6) -> str | None:
    """Strip spaces and dashes; return the code if what is left is ``digits`` digits."""
    cleaned = _typed(text)
    if len(cleaned) == digits and cleaned.isascii() and cleaned.isdigit():
        return cleaned
    return None


# --- TOTP / HOTP ---------------------------------------------------------------


def hotp_matches(seed_b32: str, counter: int, code: str, *, digits: int = 6, digest=hashlib.sha1) -> bool:
    return hmac.compare_digest(pyotp.HOTP(seed_b32, digits=digits, digest=digest).at(counter), code)


def match_totp_step(
    seed_b32: str, code: str, at: datetime, *, digits: int = 6, digest=hashlib.sha1, window: int = 1
) -> int | None:
    """The time step whose code equals ``code`` within ±``window`` steps of ``at``, or None."""
    current = int(at.timestamp()) // TOTP_STEP
    for step in range(current - window, current + window + 1):
        if step >= 0 and hotp_matches(seed_b32, step, code, digits=digits, digest=digest):
            return step
    return None


def _seed_context(user_id: int) -> bytes:
    return f"totp:{user_id}".encode()


def totp_seed(method: TwoFactorMethod) -> str:
    return vault.decrypt(method.secret_encrypted, method.key_id, _seed_context(method.user_id)).decode()


def new_totp_method(user, now: datetime, *, primary: bool, label: str = "") -> tuple[TwoFactorMethod, str]:
    """An unconfirmed authenticator method and its seed (shown once, for the QR code)."""
    seed = pyotp.random_base32()
    blob, key_id = vault.encrypt(seed.encode(), _seed_context(user.id))
    method = TwoFactorMethod(
        user_id=user.id,
        kind="totp",
        is_primary=primary,
        secret_encrypted=blob,
        key_id=key_id,
        label=label,
        created_at=now,
    )
    db.session.add(method)
    db.session.flush()
    return method, seed


def provisioning_uri(user, seed: str) -> str:
    issuer = current_app.config["RECOVERY_PRODUCT_NAME"]
    return pyotp.TOTP(seed).provisioning_uri(name=user.email, issuer_name=issuer)


# Built once: every authenticator code that matches runs it.
_USE_TOTP_STEP = (
    update(TwoFactorMethod)
    .where(
        TwoFactorMethod.id == bindparam("method_id"),
        (TwoFactorMethod.last_used_step.is_(None)) | (TwoFactorMethod.last_used_step < bindparam("step")),
    )
    .values(last_used_step=bindparam("step"), last_used_at=bindparam("now"))
)


def verify_totp(method: TwoFactorMethod, code: str, now: datetime) -> bool:
    """Check an authenticator code; a step already used (replay) is refused."""
    step = match_totp_step(totp_seed(method), code, now)
    if step is None or (method.last_used_step is not None and step <= method.last_used_step):
        return False
    # Conditional update: two requests racing with the same code cannot both win.
    won = core_execute(_USE_TOTP_STEP, {"method_id": method.id, "step": step, "now": now}).rowcount
    if won == 1:  # the loaded method says what the row now says, without reading it again
        set_committed_value(method, "last_used_step", step)
        set_committed_value(method, "last_used_at", now)
    else:
        db.session.expire(method, ["last_used_step", "last_used_at"])
    return won == 1


# --- SMS and voice codes ---------------------------------------------------------


def _code_hash(challenge_id: str, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(
    user,
    *,
    phone_e164: str,
    channel: str,
    purpose: str,
    challenge_id: str,
    now: datetime,
    method: TwoFactorMethod | None = None,
    locale: str | None = None,
) -> SentCode:
    """Send a fresh code by SMS or voice for one challenge (ASVS 6.6.2, 6.6.3),
    worded (or read aloud) in ``locale``, the language of the person asking,
    else the user's saved one.

    The limits count the codes already sent, so sending runs one at a time
    per user (the user's row lock): requests at the same moment would each
    count only what was sent before any of them, and all send."""
    config = current_app.config
    lock_row(User, user.id)
    last = db.session.execute(
        select(SentCode)
        .where(SentCode.user_id == user.id, SentCode.challenge_id == challenge_id)
        .order_by(SentCode.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    resend_after = timedelta(seconds=config["RECOVERY_CODE_RESEND_SECONDS"])
    if last is not None and now - last.created_at < resend_after:
        wait = int((last.created_at + resend_after - now).total_seconds()) + 1
        raise CodeError("resend_too_soon", wait_seconds=wait)
    sent_last_hour = db.session.execute(
        select(func.count(SentCode.id)).where(
            SentCode.user_id == user.id, SentCode.created_at > now - timedelta(hours=1)
        )
    ).scalar_one()
    if sent_last_hour >= CODES_PER_HOUR:
        raise CodeError("too_many_codes", wait_seconds=3600)
    code = f"{secrets.randbelow(10**6):06d}"
    sent = SentCode(
        user_id=user.id,
        method_id=method.id if method else None,
        challenge_id=challenge_id,
        purpose=purpose,
        channel=channel,
        phone_e164=phone_e164,
        code_hash=_code_hash(challenge_id, code),
        created_at=now,
        expires_at=now + timedelta(minutes=config["RECOVERY_CODE_TTL_MINUTES"]),
        tries=0,
    )
    db.session.add(sent)
    queue_code(channel, phone_e164, code, locale or user.locale, now)
    db.session.flush()
    return sent


def check_sent_code(user, *, challenge_id: str, code: str, now: datetime) -> SentCode | None:
    """The code sent for this challenge, if ``code`` matches it, unused and in time.

    The try is taken before comparing, in one conditional UPDATE, so parallel
    guesses at one sent code get ``RECOVERY_CODE_MAX_TRIES`` comparisons in all."""
    latest = (
        select(SentCode.id)
        .where(SentCode.user_id == user.id, SentCode.challenge_id == challenge_id, SentCode.used_at.is_(None))
        .order_by(SentCode.created_at.desc(), SentCode.id.desc())
        .limit(1)
    ).scalar_subquery()
    taken = core_execute(
        update(SentCode)
        .where(
            SentCode.id == latest,
            SentCode.used_at.is_(None),
            SentCode.expires_at > now,
            SentCode.tries < current_app.config["RECOVERY_CODE_MAX_TRIES"],
        )
        .values(tries=SentCode.tries + 1)
        .returning(SentCode.id, SentCode.code_hash)
    ).first()
    if taken is None or not hmac.compare_digest(taken.code_hash, _code_hash(challenge_id, code)):
        return None
    won = core_execute(
        update(SentCode).where(SentCode.id == taken.id, SentCode.used_at.is_(None)).values(used_at=now)
    ).rowcount
    return db.session.get(SentCode, taken.id, populate_existing=True) if won == 1 else None


# --- recovery codes --------------------------------------------------------------


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))  # 10 × log2(31) ≈ 49.5 bits
    return f"{raw[:5]}-{raw[5:]}"


def normalise_recovery_code(text: str | None) -> str | None:
    cleaned = _typed(text).lower()
    if len(cleaned) == 10 and all(ch in RECOVERY_ALPHABET for ch in cleaned):
        return f"{cleaned[:5]}-{cleaned[5:]}"
    return None


def new_recovery_code_set() -> tuple[list[str], list[str]]:
    """Ten new recovery codes and their argon2 hashes. Hashing them is slow, so
    it is done before the unit takes the write lock (``store_recovery_codes``)."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    return codes, [hash_password(code) for code in codes]


def store_recovery_codes(user, hashes: list[str], now: datetime) -> None:
    """Replace the user's recovery codes with the ones hashed in ``hashes``."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=code_hash, created_at=now) for code_hash in hashes)
    db.session.flush()


def generate_recovery_codes(user, now: datetime) -> list[str]:
    """Replace the user's recovery codes with ten new ones; the plain codes are returned once."""
    codes, hashes = new_recovery_code_set()
    store_recovery_codes(user, hashes, now)
    return codes


def use_recovery_code(user, text: str, now: datetime) -> bool:
    code = normalise_recovery_code(text)
    if code is None:
        return False
    unused = (
        db.session.execute(select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
        .scalars()
        .all()
    )
    for row in unused:
        if verify_password(row.code_hash, code):
            won = core_execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            return won == 1
    return False


def remaining_recovery_codes(user) -> int:
    return db.session.execute(
        select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).scalar_one()


# --- methods --------------------------------------------------------------------

_METHODS = "confirmed_methods"
_CONFIRMED_METHODS = (  # built once: each step of a sign-in reads them
    select(TwoFactorMethod)
    .where(TwoFactorMethod.user_id == bindparam("user_id"), TwoFactorMethod.confirmed_at.is_not(None))
    .order_by(TwoFactorMethod.is_primary.desc(), TwoFactorMethod.created_at)
)


def confirmed_methods(user) -> list[TwoFactorMethod]:
    """The user's working methods, primary first.

    A sign-in asks several times (must the user enroll? which method is
    primary? is this the challenge's method?): the list is read once per
    transaction and read again as soon as any method is added, changed or
    removed (see ``_forget_methods``)."""
    memo = remembered()
    if _methods_changing(db.session):
        memo.pop(_METHODS, None)
    known = memo.setdefault(_METHODS, {})
    if user.id not in known:
        known[user.id] = db.session.execute(_CONFIRMED_METHODS, {"user_id": user.id}).scalars().all()
    return list(known[user.id])


def _methods_changing(session) -> bool:
    return any(isinstance(obj, TwoFactorMethod) for obj in (*session.new, *session.dirty, *session.deleted))


@event.listens_for(Session, "before_flush")
def _forget_methods(session, _context, _instances):
    if _methods_changing(session):
        session.info.get("remembered", {}).pop(_METHODS, None)


@event.listens_for(Session, "do_orm_execute")
def _forget_methods_after_bulk_change(state):
    if (state.is_update or state.is_delete) and any(m.class_ is TwoFactorMethod for m in state.all_mappers):
        state.session.info.get("remembered", {}).pop(_METHODS, None)


def primary_method(user) -> TwoFactorMethod | None:
    methods = confirmed_methods(user)
    return next((m for m in methods if m.is_primary), methods[0] if methods else None)


# --- trusted devices ---------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def trust_device(user, now: datetime, *, browser: str | None, address: str | None) -> str:
    """Mark this browser as trusted for ``user``; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    days = current_app.config["RECOVERY_TRUSTED_DEVICE_DAYS"]
    db.session.add(
        TrustedDevice(
            user_id=user.id,
            token_hash=_token_hash(token),
            browser=(browser or "")[:300],
            address=address,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    db.session.flush()
    return token


def trusted_device_for(user, token: str | None, now: datetime) -> TrustedDevice | None:
    """The live trusted device of ``user`` that ``token`` names; a token of
    another user, a revoked or expired one, or garbage gives None."""
    if not token or len(token) > 200:
        return None
    device = db.session.execute(
        select(TrustedDevice).where(TrustedDevice.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if device is None or device.user_id != user.id or device.revoked_at is not None or now >= device.expires_at:
        return None
    device.last_seen_at = now
    return device


def revoke_devices(user, now: datetime, device_id: int | None = None) -> int:
    query = update(TrustedDevice).where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None))
    if device_id is not None:
        query = query.where(TrustedDevice.id == device_id)
    return core_execute(query.values(revoked_at=now)).rowcount
