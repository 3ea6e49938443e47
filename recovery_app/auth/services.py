"""The rules of signing in: the password step, the second-factor challenge,
forced enrollment, and changes in security settings.

Functions take plain values and ``now``; the views own the request, the
browser session and the commit. Every refusal is an ``AuthError`` carrying a
translatable message (and, for locks, when the lock ends).

Attempt limits on the account (ASVS 6.3.1, NIST 800-63B 5.2.2), on top of the
per-address limits the views set:

* wrong passwords: after ``RECOVERY_PASSWORD_FREE_TRIES`` a growing delay
  (1 s, 2 s, 4 s … up to ``RECOVERY_PASSWORD_MAX_DELAY_SECONDS``). While it
  lasts every password, right or wrong, gets the same refusal after the same
  hash, and is not counted. A browser that completed a sign-in to the account
  before (the known-browser cookie) is not slowed by other people's guesses,
  so someone who knows only the e-mail address can slow sign-in but never
  keep the owner out;
* wrong codes: after ``RECOVERY_CODE_LOCK_AFTER`` (10) the challenge is locked
  for ``RECOVERY_CODE_LOCK_MINUTES`` (15). A try is taken (counted) before the
  code is compared, in one conditional UPDATE, so parallel guesses cannot
  evaluate more than 10 codes per lock window;
* wrong codes (which follow a right password) count towards
  ``RECOVERY_HARD_LOCK_AFTER`` (100) consecutive failures (NIST 800-63B
  5.2.2), after which the account is locked until a manager lifts it or the
  user resets the password by e-mail and passes a second factor. Wrong
  passwords alone never lead to it.

Every counter changes in SQL (``UPDATE … SET n = n + 1 … RETURNING n``), never
read into Python, increased and written back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, or_, select, update

from ..database import core_execute, lock_row, slow_work_then_write, update_row
from ..domain import DomainError
from ..extensions import db
from ..i18n import zoned
from ..models import Passkey, RecoveryCode, TrustedDevice, TwoFactorMethod, User, UserSession
from ..notify import code_trouble, queue_email
from ..recovery import services as recovery
from ..web import describe_browser
from . import passkeys, twofactor
from .events import record_event
from .passwords import hash_password, needs_rehash, verify_password
from .sessions import bump_epoch, end_all_sessions
from .users import find_user_by_email

CODES_PAUSED = _l("Too many wrong codes. For your safety, entering codes is paused for a while.")
HARD_LOCKED = _l(
    "This account is locked after too many failed attempts. A manager can unlock it, or you can set a "
    "new password with “Forgot your password?” and then sign in with a code."
)
SIGN_IN_REFUSED = _l("That e-mail address and password do not match. Check both and try again.")
SIGN_IN_SLOWED = _l(
    "That e-mail address and password do not match, or sign-in to this account is paused for a "
    "moment after many wrong passwords. Wait a minute, then try again."
)
KNOWN_BROWSER_SALT = "known-browser"
FEW_RECOVERY_CODES = 3  # at or below this many left, the user is urged to create new ones


class AuthError(DomainError):
    """A refusal with a message for the page; ``until`` is set for locks."""

    def __init__(self, message, *, until: datetime | None = None, field: str | None = None):
        super().__init__(message, field=field)
        self.until = until


@dataclass
class Challenge:
    """What the challenge page asks for: a passkey, a code from ``method_id`` or a
    recovery code. ``id`` binds SMS/voice codes to this challenge (ASVS 6.6.2).
    ``unsent``: a phone method whose code waits for the user to ask for it."""

    id: str
    method_id: int | None
    recovery: bool = False
    passkey: bool = False
    unsent: bool = False

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "method": self.method_id,
            "recovery": self.recovery,
            "passkey": self.passkey,
            "unsent": self.unsent,
        }

    @classmethod
    def from_dict(cls, data) -> Challenge | None:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        method = data.get("method")
        return cls(
            id=data["id"],
            method_id=method if isinstance(method, int) else None,
            recovery=bool(data.get("recovery")),
            passkey=bool(data.get("passkey")),
            unsent=bool(data.get("unsent")),
        )


def _config(name: str):
    return current_app.config[name]


def _when(user: User, moment: datetime) -> str:
    """A time written for a notice e-mail, in the user's language and zone."""
    return zoned(moment, user.time_zone, user.locale or "ja")


def notify(user: User, template: str, now: datetime, **context) -> None:
    """Queue a notice e-mail (never a code) about the user's sign-in (ASVS 6.3.5, 6.3.7)."""
    queue_email(
        user.email,
        f"auth/email/{template}",
        user.locale or "ja",
        now,
        when=_when(user, now),
        product=_config("RECOVERY_PRODUCT_NAME"),
        **context,
    )


def _notify_change(user: User, change: str, now: datetime, address: str | None, browser: str | None) -> None:
    notify(user, "security_change", now, change=change, address=address or "?", browser=describe_browser(browser))


# --- the password step ----------------------------------------------------------


def authenticate(
    email: str,
    password: str,
    now: datetime,
    *,
    address: str | None,
    browser: str | None,
    known_browser: str | None = None,
) -> User:
    """The user whose e-mail and password these are, or ``AuthError``.

    An unknown address, a wrong password and a disabled user get the same
    message after the same argon2 work (ASVS 6.3.8). While the account is
    slowed, a right and a wrong password get the same message too, so the
    delay confirms nothing. The hard lock is only revealed to someone who
    typed the right password.
    """
    user = find_user_by_email(email)
    if user is not None and not user.is_active:
        user = None
    password_hash = user.password_hash if user else None
    with slow_work_then_write():  # no transaction, lock or connection held during the hash
        right = verify_password(password_hash, password)
    if user is None:
        record_event(None, "password_failed", now, address=address, browser=browser, known=False)
        raise AuthError(SIGN_IN_REFUSED)
    slowed = user.password_delay_until is not None and now < user.password_delay_until
    if slowed and not is_known_browser(user, known_browser):
        raise AuthError(SIGN_IN_SLOWED)
    if not right:
        _password_failed(user, now, address, browser)
        raise AuthError(SIGN_IN_REFUSED)
    if user.hard_locked_at is not None and not _reset_since_lock(user):
        raise AuthError(HARD_LOCKED)
    if user.failed_password_count or user.password_delay_until is not None:
        # Read after the write began: nothing to reset is the common case, and costs no UPDATE.
        update_row(user, failed_password_count=0, password_delay_until=None)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def known_browser_token(user: User) -> str:
    """The cookie value that marks this browser as one that completed a sign-in
    to ``user``'s account; it dies with the session epoch (sign out everywhere,
    an approved recovery, a password change)."""
    return URLSafeTimedSerializer(_config("SECRET_KEY"), salt=KNOWN_BROWSER_SALT).dumps([user.id, user.session_epoch])


def is_known_browser(user: User, token: str | None) -> bool:
    if not token:
        return False
    days = _config("RECOVERY_KNOWN_BROWSER_DAYS")
    try:
        user_id, epoch = URLSafeTimedSerializer(_config("SECRET_KEY"), salt=KNOWN_BROWSER_SALT).loads(
            token, max_age=days * 86400
        )
    except (BadSignature, ValueError, TypeError):
        return False
    return user_id == user.id and epoch == user.session_epoch


def _count(user: User, **increments) -> tuple:
    """Add to counters of ``user`` in one statement; returns their new values."""
    columns = [getattr(User, name) for name in increments]
    row = core_execute(
        update(User)
        .where(User.id == user.id)
        .values({column: column + amount for column, amount in zip(columns, increments.values(), strict=True)})
        .returning(*columns)
    ).one()
    db.session.expire(user, list(increments))
    return tuple(row)


def _reset_since_lock(user: User) -> bool:
    """A password set after the hard lock lets the user on to the code step;
    the lock is lifted once a second factor is passed too."""
    return user.password_changed_at is not None and user.password_changed_at > user.hard_locked_at


def _password_failed(user: User, now: datetime, address, browser) -> None:
    (count,) = _count(user, failed_password_count=1)
    over = count - _config("RECOVERY_PASSWORD_FREE_TRIES")
    if over >= 0:
        until = now + timedelta(seconds=min(2**over, _config("RECOVERY_PASSWORD_MAX_DELAY_SECONDS")))
        core_execute(
            update(User)
            .where(User.id == user.id, or_(User.password_delay_until.is_(None), User.password_delay_until < until))
            .values(password_delay_until=until)
        )
        db.session.expire(user, ["password_delay_until"])
    record_event(user, "password_failed", now, address=address, browser=browser, count=count)


def _count_failure(user: User, now: datetime, address, browser) -> None:
    """One more failure after a right password, towards the hard lock; the one
    request that reaches the ceiling locks and tells the user, once."""
    (failures,) = _count(user, consecutive_failures=1)
    if failures < _config("RECOVERY_HARD_LOCK_AFTER"):
        return
    locked = core_execute(
        update(User).where(User.id == user.id, User.hard_locked_at.is_(None)).values(hard_locked_at=now)
    ).rowcount
    db.session.expire(user, ["hard_locked_at"])
    if locked:
        record_event(user, "hard_locked", now, address=address, browser=browser, failures=failures)
        notify(user, "locked", now, address=address or "?", browser=describe_browser(browser))


# What ``unlock`` lifts, each with its lifted value: the hard lock, the code lock,
# the password delay and the failure counts that lead to them.
_ATTEMPT_LOCKS = {
    "hard_locked_at": None,
    "consecutive_failures": 0,
    "failed_code_count": 0,
    "code_locked_until": None,
    "failed_password_count": 0,
    "password_delay_until": None,
}


def has_attempt_locks(user: User) -> bool:
    """Whether ``unlock`` would change anything: a lock, a delay or a failure count."""
    return any(getattr(user, name) for name in _ATTEMPT_LOCKS)


def unlock(user: User, by, now: datetime) -> None:
    """Lift every attempt lock of ``user``: the hard lock, the code lock and the
    password delay. ``by`` is the manager (a User) or a reason such as
    ``"password_reset"``."""
    for name, lifted in _ATTEMPT_LOCKS.items():
        setattr(user, name, lifted)
    by_detail = {"by_user": by.id} if isinstance(by, User) else {"by": str(by)}
    record_event(user, "unlocked", now, **by_detail)


# --- the challenge ----------------------------------------------------------------


def must_enroll(user: User) -> bool:
    """A user with no confirmed method has no second factor to ask for: they set one
    up before anything else, whatever the flag said (6.3.3: no sign-in without it)."""
    if not user.must_enroll_2sv and not has_second_factor(user):
        user.must_enroll_2sv = True
    return user.must_enroll_2sv


def usable_methods(user: User) -> list[TwoFactorMethod]:
    return twofactor.confirmed_methods(user)


def has_second_factor(user: User) -> bool:
    """A confirmed way to get codes or a passkey (recovery codes alone are a backup)."""
    return bool(twofactor.confirmed_methods(user) or passkeys.passkeys_of(user))


def code_delivery_trouble(method: TwoFactorMethod | None, now: datetime) -> tuple[str, str] | None:
    """Whether the newest code sent to this phone method (within a code's
    lifetime) could not be delivered or could not be sent: the challenge page
    says so and offers the call or another method."""
    if method is None or method.kind not in ("sms", "voice") or not method.phone_e164:
        return None
    since = now - timedelta(minutes=current_app.config["RECOVERY_CODE_TTL_MINUTES"])
    return code_trouble(method.phone_e164, since)


def method_of(user: User, method_id: int | None, *, confirmed: bool = True) -> TwoFactorMethod | None:
    if method_id is None:
        return None
    method = db.session.get(TwoFactorMethod, method_id)
    if method is None or method.user_id != user.id or (confirmed and method.confirmed_at is None):
        return None
    return method


def start_challenge(
    user: User,
    now: datetime,
    *,
    current: Challenge | None = None,
    method_id: int | None = None,
    channel: str | None = None,
    recovery: bool = False,
    passkey: bool = False,
    send: bool = True,
    locale: str | None = None,
) -> tuple[Challenge, AuthError | None]:
    """The challenge for ``user``: a passkey when they have one, else the primary
    method, or the way chosen on the "other ways" page. Phone methods are sent a
    code at once (``channel`` may turn an SMS into a voice call), in ``locale``,
    never while a passkey is asked for, and not when ``send`` is off: then the
    challenge waits, ``unsent``, until the user asks for the code. Asking again
    for the same method keeps the challenge, so the resend throttle holds. A
    code that could not be sent is returned as the second value, for the page
    to say."""
    if recovery:
        return Challenge(id=secrets.token_urlsafe(16), method_id=None, recovery=True), None
    if passkey or (method_id is None and passkeys.passkeys_of(user)):
        if not passkeys.passkeys_of(user):
            raise AuthError(_l("That way of signing in is not available. Choose another."))
        return Challenge(id=secrets.token_urlsafe(16), method_id=None, passkey=True), None
    method = method_of(user, method_id) if method_id is not None else twofactor.primary_method(user)
    if method is None:
        raise AuthError(_l("That way of signing in is not available. Choose another."))
    if current is not None and current.method_id == method.id and not current.recovery:
        challenge = current
    else:
        challenge = Challenge(id=secrets.token_urlsafe(16), method_id=method.id)
    if method.kind in ("sms", "voice"):
        challenge.unsent = not send
        if not send:
            return challenge, None
        try:
            send_challenge_code(user, challenge, now, channel=channel or method.kind, locale=locale)
        except AuthError as exc:
            return challenge, exc
    return challenge, None


def sends_code_unasked(user: User) -> bool:
    """Whether signing in sends a code to the user's phone without being asked.
    Not while the seller has an open recovery case: the phone is probably lost
    (a text to it helps whoever holds it), so the case is shown first and a
    code goes only when the seller asks for one."""
    from ..recovery.services import open_case

    return not (user.is_seller and open_case(user) is not None)


def send_challenge_code(
    user: User, challenge: Challenge, now: datetime, *, channel: str, locale: str | None = None
) -> None:
    method = method_of(user, challenge.method_id)
    if method is None or method.kind not in ("sms", "voice") or channel not in ("sms", "voice"):
        raise AuthError(_l("That way of signing in is not available. Choose another."))
    try:
        twofactor.send_code(
            user,
            phone_e164=method.phone_e164,
            channel=channel,
            purpose="sign_in",
            challenge_id=challenge.id,
            now=now,
            method=method,
            locale=locale,
        )
    except twofactor.CodeError as exc:
        raise code_error_message(exc, now) from None


def code_error_message(exc: twofactor.CodeError, now: datetime) -> AuthError:
    if exc.reason == "resend_too_soon":
        return AuthError(
            _l("A code was sent a moment ago. You can ask for another in %(n)d seconds.", n=exc.wait_seconds or 60)
        )
    return AuthError(
        _l("Too many codes were sent in the last hour. Please use another way, or try again later."),
        until=now + timedelta(seconds=exc.wait_seconds or 3600),
    )


def check_locks(user: User, now: datetime) -> None:
    """Refuse at once while the account or its challenge is locked."""
    if user.hard_locked_at is not None and not _reset_since_lock(user):
        raise AuthError(HARD_LOCKED)
    if user.code_locked_until is not None and now < user.code_locked_until:
        raise AuthError(CODES_PAUSED, until=user.code_locked_until)


# Every code typed runs this; built once (building it costs about what running it does).
_TAKE_CODE_TRY = (
    update(User)
    .where(
        User.id == bindparam("user_id"),
        User.failed_code_count < bindparam("ceiling"),
        or_(User.code_locked_until.is_(None), User.code_locked_until <= bindparam("now")),
        or_(User.hard_locked_at.is_(None), User.password_changed_at > User.hard_locked_at),
    )
    .values(failed_code_count=User.failed_code_count + 1)
    .returning(User.failed_code_count)
)


def _take_code_try(user: User, now: datetime) -> int:
    """Count a try before the code is compared, in one conditional UPDATE: at
    most ``RECOVERY_CODE_LOCK_AFTER`` codes are compared per lock window, however
    many requests arrive at once. Returns the number of tries taken so far."""
    taken = core_execute(
        _TAKE_CODE_TRY, {"user_id": user.id, "ceiling": _config("RECOVERY_CODE_LOCK_AFTER"), "now": now}
    ).scalar_one_or_none()
    db.session.expire(user, ["failed_code_count"])
    if taken is None:
        db.session.refresh(user)
        check_locks(user, now)
        raise AuthError(CODES_PAUSED, until=user.code_locked_until)
    return taken


def verify_code(
    user: User, challenge: Challenge, text: str, now: datetime, *, address: str | None, browser: str | None
) -> str:
    """Check a code typed for ``challenge``; returns what was used ("totp",
    "sms", "voice" or "recovery_code"). Wrong codes count towards the locks;
    a code that is not even well-formed changes nothing."""
    check_locks(user, now)
    if challenge.recovery:
        if twofactor.normalise_recovery_code(text) is None:
            raise AuthError(_l("A recovery code has 10 letters and digits, like abcde-23456."), field="code")
        tries = _take_code_try(user, now)
        if twofactor.use_recovery_code(user, text, now):
            record_event(
                user,
                "recovery_code_used",
                now,
                address=address,
                browser=browser,
                left=twofactor.remaining_recovery_codes(user),
            )
            _notify_change(user, "recovery_code_used", now, address, browser)
            _code_passed(user)
            return "recovery_code"
        _code_failed(user, tries, now, address, browser, "recovery_code")
        raise AuthError(_l("That recovery code is not right or was already used."), field="code")
    code = twofactor.normalise_code(text)
    if code is None:
        raise AuthError(
            _l("Enter the 6 digits of the code. Spaces and dashes are fine; letters are not."), field="code"
        )
    method = method_of(user, challenge.method_id)
    if method is None:
        raise AuthError(_l("That way of signing in is not available. Choose another."))
    tries = _take_code_try(user, now)
    if method.kind == "totp":
        ok = twofactor.verify_totp(method, code, now)
    else:
        sent = twofactor.check_sent_code(user, challenge_id=challenge.id, code=code, now=now)
        ok = sent is not None
        if ok:
            method.last_used_at = now
    if not ok:
        _code_failed(user, tries, now, address, browser, method.kind)
        if method.kind == "totp":
            raise AuthError(
                _l("That code is not right, or it was already used. Wait for the next code in your app and try again."),
                field="code",
            )
        raise AuthError(
            _l("That code is not right or has expired. Check the latest message, or ask for a new code."), field="code"
        )
    _code_passed(user)
    return method.kind


PASSKEY_MESSAGES = {
    "malformed": _l("Your browser did not send an answer from a passkey. Try again, or use another way."),
    "expired": _l("This passkey request has expired or was already used. Try again."),
    "unknown": _l("That passkey is not set up for your user, or it was removed. Use another passkey or another way."),
    "invalid": _l(
        "The passkey could not be checked. Passkeys work only on this site's own address and with your "
        "device's screen lock (PIN, fingerprint or face). Try again, or use another way."
    ),
    "counter": _l(
        "This passkey was refused: it looks like a copy of your passkey was used. Use another way to "
        "sign in, then remove this passkey in your security settings."
    ),
    "duplicate": _l("This passkey is already set up for you."),
}


def verify_passkey(
    user: User, purpose: str, challenge_id, credential: str, now: datetime, *, address: str | None, browser: str | None
) -> str:
    """Check a passkey answer to the challenge this browser was given (``purpose``
    "sign_in" or "fresh"); returns "passkey". A refused passkey counts towards the
    same locks as a wrong code; an answer that is not one changes nothing. A
    signature counter that went backwards is recorded as a security event."""
    check_locks(user, now)
    try:
        passkeys.authenticate(user, purpose, challenge_id, credential, now)
    except passkeys.PasskeyError as exc:
        if exc.reason == "counter":
            record_event(
                user,
                "passkey_counter_backwards",
                now,
                address=address,
                browser=browser,
                passkey_id=exc.passkey.id,
                name=exc.passkey.name,
                counter=exc.detail,
            )
        if exc.reason not in ("malformed", "expired"):
            tries = _take_code_try(user, now)
            _code_failed(user, tries, now, address, browser, "passkey")
        raise AuthError(PASSKEY_MESSAGES[exc.reason]) from None
    _code_passed(user)
    return "passkey"


def _code_passed(user: User) -> None:
    update_row(
        user,
        failed_code_count=0,
        code_locked_until=None,
        failed_password_count=0,
        password_delay_until=None,
        consecutive_failures=0,
    )


def _code_failed(user: User, tries: int, now: datetime, address, browser, kind: str) -> None:
    """A wrong code: its try was taken already (``tries`` so far in this window)."""
    record_event(user, "code_failed", now, address=address, browser=browser, method=kind, count=tries)
    _count_failure(user, now, address, browser)
    if tries == _config("RECOVERY_SUSPICIOUS_AFTER"):
        # The password was right but the codes are not: someone may know the password (ASVS 6.3.5).
        notify(user, "suspicious_attempt", now, address=address or "?", browser=describe_browser(browser))
    if tries >= _config("RECOVERY_CODE_LOCK_AFTER"):
        until = now + timedelta(minutes=_config("RECOVERY_CODE_LOCK_MINUTES"))
        update_row(user, code_locked_until=until, failed_code_count=0)
        record_event(user, "code_locked", now, address=address, browser=browser, until=until.isoformat())
        raise AuthError(CODES_PAUSED, until=until)


def trusted_device(user: User, token: str | None, now: datetime) -> TrustedDevice | None:
    """The trusted device this browser's cookie names, if it belongs to ``user`` and is live."""
    if user.hard_locked_at is not None:
        return None
    return twofactor.trusted_device_for(user, token, now)


# Built once: every completed sign-in asks it.
_BROWSER_SEEN = (
    select(UserSession.id)
    .where(UserSession.user_id == bindparam("user_id"), UserSession.browser == bindparam("browser"))
    .limit(1)
)


def complete_sign_in(
    user: User, now: datetime, *, address: str | None, browser: str | None, via: str, remember_device: bool = False
) -> str | None:
    """Both steps passed: record it, tell the user about a new device, and
    trust this browser when asked. Returns the trusted-device cookie value to set.

    A second step the user already had (any method, a recovery code or a
    trusted device; not a first enrollment) proves the owner is here: an open
    recovery case is cancelled, since it is not needed and may have been opened
    by someone who holds only the password."""
    if via != "enrollment":
        recovery.cancel_for_owner(user, reason="owner_signed_in", now=now, address=address, browser=browser, via=via)
    if user.hard_locked_at is not None:
        unlock(user, "password_reset", now)  # a new password plus a second factor (see _reset_since_lock)
    seen_before = (
        via == "trusted_device"
        or core_execute(_BROWSER_SEEN, {"user_id": user.id, "browser": (browser or "")[:300]}).first() is not None
    )
    token = None
    if remember_device and via != "trusted_device":
        token = twofactor.trust_device(user, now, browser=browser, address=address)
        record_event(user, "trusted_device_added", now, address=address, browser=browser)
    first_ever = user.last_sign_in_at is None  # the enrollment notice already went out
    if (not seen_before and not first_ever) or token:
        notify(user, "new_device", now, address=address or "?", browser=describe_browser(browser), trusted=bool(token))
    update_row(user, last_sign_in_at=now, last_sign_in_address=address, last_sign_in_browser=(browser or "")[:300])
    record_event(user, "signed_in", now, address=address, browser=browser, via=via)
    return token


# --- adding methods (enrollment and settings) ----------------------------------------


def _one_change_at_a_time(user: User) -> None:
    """Changes to one user's ways of passing the second step run one after the
    other, each seeing what the one before left: two tabs removing the last
    two methods at once would otherwise each see the other's and leave none,
    and two confirmations at once would both take the primary place."""
    lock_row(User, user.id)


def start_app_method(user: User, now: datetime) -> tuple[TwoFactorMethod, str]:
    """A new authenticator app waiting for its first code; unconfirmed
    leftovers of earlier attempts are dropped."""
    _drop_unconfirmed(user)
    return twofactor.new_totp_method(user, now, primary=False, label="Authenticator")


def pending_method(user: User, method_id: int | None, kind: str | None = None) -> TwoFactorMethod | None:
    method = method_of(user, method_id, confirmed=False)
    if method is None or method.confirmed_at is not None or (kind and method.kind != kind):
        return None
    return method


def confirm_app_method(
    user: User, method_id: int | None, text: str, now: datetime, *, address, browser
) -> TwoFactorMethod:
    method = pending_method(user, method_id, "totp")
    if method is None:
        raise AuthError(_l("This set-up has expired. Please start again."))
    code = twofactor.normalise_code(text)
    if code is None:
        raise AuthError(
            _l("Enter the 6 digits of the code. Spaces and dashes are fine; letters are not."), field="code"
        )
    if not twofactor.verify_totp(method, code, now):
        raise AuthError(
            _l("That code does not match. Check that the app shows this service, wait for a new code and try again."),
            field="code",
        )
    return _confirm(user, method, now, address, browser)


def parse_phone(text: str, channel: str) -> str:
    """An E.164 number from what the user typed, or ``AuthError``. SMS needs a mobile number."""
    try:
        number = phonenumbers.parse((text or "").strip(), _config("RECOVERY_PHONE_REGION"))
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise AuthError(
            _l(
                "That is not a phone number we can use. Type it as you would dial it, like 090-1234-5678, "
                "or with the country code, like +81 90 1234 5678."
            ),
            field="number",
        )
    if channel == "sms" and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise AuthError(_l("Text messages need a mobile number. For a landline, choose a voice call."), field="number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def start_phone_method(
    user: User, text: str, channel: str, now: datetime, *, locale: str | None = None
) -> tuple[TwoFactorMethod, str]:
    """A phone method waiting for the code just sent to it; returns it and the challenge id."""
    if channel not in ("sms", "voice"):
        raise AuthError(_l("Choose text message or voice call."), field="channel")
    e164 = parse_phone(text, channel)
    if any(m.phone_e164 == e164 for m in twofactor.confirmed_methods(user)):
        raise AuthError(_l("This number is already set up. Add a different phone as a backup."), field="number")
    _drop_unconfirmed(user)
    method = TwoFactorMethod(user_id=user.id, kind=channel, is_primary=False, phone_e164=e164, label="", created_at=now)
    db.session.add(method)
    db.session.flush()
    challenge_id = secrets.token_urlsafe(16)
    try:
        twofactor.send_code(
            user,
            phone_e164=e164,
            channel=channel,
            purpose="enroll",
            challenge_id=challenge_id,
            now=now,
            method=method,
            locale=locale,
        )
    except twofactor.CodeError as exc:
        db.session.delete(method)  # nothing half-made is left behind
        db.session.flush()
        raise code_error_message(exc, now) from None
    return method, challenge_id


def resend_phone_code(
    user: User, method_id: int | None, challenge_id: str, now: datetime, *, locale: str | None = None
) -> None:
    method = pending_method(user, method_id)
    if method is None or method.kind not in ("sms", "voice"):
        raise AuthError(_l("This set-up has expired. Please start again."))
    try:
        twofactor.send_code(
            user,
            phone_e164=method.phone_e164,
            channel=method.kind,
            purpose="enroll",
            challenge_id=challenge_id,
            now=now,
            method=method,
            locale=locale,
        )
    except twofactor.CodeError as exc:
        raise code_error_message(exc, now) from None


def confirm_phone_method(
    user: User, method_id: int | None, challenge_id: str, text: str, now: datetime, *, address, browser
) -> TwoFactorMethod:
    method = pending_method(user, method_id)
    if method is None or method.kind not in ("sms", "voice"):
        raise AuthError(_l("This set-up has expired. Please start again."))
    code = twofactor.normalise_code(text)
    if code is None:
        raise AuthError(
            _l("Enter the 6 digits of the code. Spaces and dashes are fine; letters are not."), field="code"
        )
    if twofactor.check_sent_code(user, challenge_id=challenge_id, code=code, now=now) is None:
        raise AuthError(
            _l("That code is not right or has expired. Check the latest message, or ask for a new code."), field="code"
        )
    method.last_used_at = now
    return _confirm(user, method, now, address, browser)


def _confirm(user: User, method: TwoFactorMethod, now: datetime, address, browser) -> TwoFactorMethod:
    method_id = method.id
    _one_change_at_a_time(user)
    method = pending_method(user, method_id)  # read again under the lock: another tab may have confirmed or dropped it
    if method is None:
        raise AuthError(_l("This set-up has expired. Please start again."))
    has_primary = any(m.is_primary for m in twofactor.confirmed_methods(user))
    method.confirmed_at = now
    method.is_primary = not has_primary
    record_event(
        user, "method_added", now, address=address, browser=browser, method=method.kind, primary=method.is_primary
    )
    if not user.must_enroll_2sv:
        _notify_change(user, "method_added", now, address, browser)
    db.session.flush()
    return method


def _drop_unconfirmed(user: User) -> None:
    for method in db.session.execute(
        select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id, TwoFactorMethod.confirmed_at.is_(None))
    ).scalars():
        db.session.delete(method)
    db.session.flush()


# --- passkeys (enrollment and settings) ------------------------------------------------

PASSKEY_NAME_MAX = 60


def default_passkey_name(browser: str | None) -> str:
    """What a new passkey is called unless the user names it: the browser and system."""
    return describe_browser(browser)[:PASSKEY_NAME_MAX]


def passkey_options(user: User, purpose: str, now: datetime, *, replacing=None) -> tuple[int, str]:
    """Start a passkey ceremony: "register" to add one, "sign_in" or "fresh" to use one.
    Returns the challenge id (for this browser's session) and the options JSON;
    ``replacing`` is the id of the challenge this browser held before, dropped."""
    if purpose == "register":
        if not passkeys.available():
            raise AuthError(
                _l(
                    "Passkeys cannot be used at this site's address. Ask the operator to set its "
                    "address to a domain name."
                )
            )
        return passkeys.registration_options(user, now, replacing)
    if not passkeys.passkeys_of(user):  # removed since the page was opened
        raise AuthError(PASSKEY_MESSAGES["unknown"])
    return passkeys.authentication_options(user, purpose, now, replacing)


def add_passkey(
    user: User, challenge_id, credential: str, name: str | None, now: datetime, *, address, browser
) -> Passkey:
    """Keep the passkey the browser just made (user verification required), under
    the name the user chose or the browser's."""
    name = " ".join((name or "").split()) or default_passkey_name(browser)
    if len(name) > PASSKEY_NAME_MAX:
        raise AuthError(_l("Use at most %(n)d characters.", n=PASSKEY_NAME_MAX), field="name")
    _one_change_at_a_time(user)
    try:
        passkey = passkeys.register(user, challenge_id, credential, name, now)
    except passkeys.PasskeyError as exc:
        raise AuthError(PASSKEY_MESSAGES.get(exc.reason, PASSKEY_MESSAGES["invalid"])) from None
    record_event(user, "passkey_added", now, address=address, browser=browser, passkey_id=passkey.id, name=name)
    if not user.must_enroll_2sv:
        _notify_change(user, "passkey_added", now, address, browser)
    return passkey


def remove_passkey(user: User, passkey_id: int, now: datetime, *, address, browser) -> None:
    _one_change_at_a_time(user)
    others = [p for p in passkeys.passkeys_of(user) if p.id != passkey_id]
    if passkeys.passkey_of(user, passkey_id) is not None and not others and not twofactor.confirmed_methods(user):
        raise AuthError(_l("This is your only second step. Add another first, or turn 2-step verification off."))
    removed = passkeys.remove(user, passkey_id)
    if removed is None:
        raise AuthError(_l("That passkey no longer exists."))
    record_event(
        user, "passkey_removed", now, address=address, browser=browser, passkey_id=passkey_id, name=removed.name
    )
    _notify_change(user, "passkey_removed", now, address, browser)


# --- forced enrollment ------------------------------------------------------------


def enrollment_step(user: User) -> str:
    """Where a user who must set up 2SV is: "method", "backup" or "codes"."""
    count = len(twofactor.confirmed_methods(user)) + len(passkeys.passkeys_of(user))
    if count == 0:
        return "method"
    return "codes" if count >= 2 else "backup"


def new_recovery_codes(user: User, now: datetime, *, address, browser) -> list[str]:
    """Ten new recovery codes replace the old ones. The ten argon2 hashes are
    made before the write lock is taken (the caller is ``@reads_first``), so a
    slow hash never holds up everyone else's writes on SQLite."""
    if not has_second_factor(user):
        raise AuthError(_l("Set up a way to get codes first."))
    with slow_work_then_write():
        codes, hashes = twofactor.new_recovery_code_set()
    _one_change_at_a_time(user)  # two tabs at once: one set replaces the other, never twenty codes
    if not has_second_factor(user):  # read again as a writer: a method may have gone meanwhile
        raise AuthError(_l("Set up a way to get codes first."))
    twofactor.store_recovery_codes(user, hashes, now)
    record_event(user, "recovery_codes_generated", now, address=address, browser=browser)
    if not user.must_enroll_2sv:
        _notify_change(user, "recovery_codes_generated", now, address, browser)
    return codes


def finish_enrollment(user: User, now: datetime, *, address, browser) -> None:
    _one_change_at_a_time(user)
    if not has_second_factor(user):
        raise AuthError(_l("Set up a way to get codes first."))
    if twofactor.remaining_recovery_codes(user) == 0:
        raise AuthError(_l("Create your recovery codes and keep them somewhere safe first."))
    user.must_enroll_2sv = False
    _code_passed(user)
    record_event(
        user,
        "enrolled",
        now,
        address=address,
        browser=browser,
        methods=[m.kind for m in twofactor.confirmed_methods(user)] + ["passkey"] * len(passkeys.passkeys_of(user)),
    )
    _notify_change(user, "enrolled", now, address, browser)


# --- security settings ---------------------------------------------------------------


def make_primary(user: User, method_id: int, now: datetime, *, address, browser) -> None:
    _one_change_at_a_time(user)
    method = method_of(user, method_id)
    if method is None:
        raise AuthError(_l("That method no longer exists."))
    if method.is_primary:  # already the main way (a second click, another tab): nothing to tell anyone
        return
    for other in twofactor.confirmed_methods(user):
        other.is_primary = other.id == method.id
    record_event(user, "method_primary_changed", now, address=address, browser=browser, method=method.kind)
    _notify_change(user, "method_primary_changed", now, address, browser)


def remove_method(user: User, method_id: int, now: datetime, *, address, browser) -> None:
    _one_change_at_a_time(user)
    method = method_of(user, method_id)
    if method is None:
        raise AuthError(_l("That method no longer exists."))
    others = [m for m in twofactor.confirmed_methods(user) if m.id != method.id]
    if not others and not passkeys.passkeys_of(user):
        raise AuthError(_l("This is your only way to get codes. Add another first, or turn 2-step verification off."))
    if method.is_primary and others:
        others[0].is_primary = True
    db.session.delete(method)
    record_event(user, "method_removed", now, address=address, browser=browser, method=method.kind)
    _notify_change(user, "method_removed", now, address, browser)
    db.session.flush()


def trusted_devices(user: User, now: datetime) -> list[TrustedDevice]:
    return (
        db.session.execute(
            select(TrustedDevice)
            .where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None), TrustedDevice.expires_at > now)
            .order_by(TrustedDevice.last_seen_at.desc())
        )
        .scalars()
        .all()
    )


def revoke_trusted_devices(user: User, device_id: int | None, now: datetime, *, address, browser) -> int:
    count = twofactor.revoke_devices(user, now, device_id)
    if count == 0:
        raise AuthError(_l("That device was already removed."))
    record_event(user, "trusted_device_revoked", now, address=address, browser=browser, count=count)
    _notify_change(user, "trusted_device_revoked", now, address, browser)
    return count


def sign_out_everywhere(user: User, now: datetime, *, address, browser) -> int:
    ended = end_all_sessions(user, now, "signed_out_everywhere")
    bump_epoch(user)
    record_event(user, "sessions_ended", now, address=address, browser=browser, count=ended)
    return ended


def turn_off_2sv(user: User, now: datetime, *, address, browser) -> None:
    """The user's own choice (the FAQ allows it): every method, recovery code and
    trusted device goes, every session ends, and the next sign-in asks to set
    2SV up again before anything else."""
    _one_change_at_a_time(user)
    for method in db.session.execute(select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id)).scalars():
        db.session.delete(method)
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    passkeys.remove_all(user)
    twofactor.revoke_devices(user, now)
    user.must_enroll_2sv = True
    end_all_sessions(user, now, "twofactor_disabled")
    bump_epoch(user)
    record_event(user, "twofactor_disabled", now, address=address, browser=browser, by="user")
    _notify_change(user, "twofactor_disabled", now, address, browser)
    db.session.flush()


def record_sign_out(user: User | None, now: datetime, *, address, browser) -> None:
    if user is not None:
        record_event(user, "signed_out", now, address=address, browser=browser)


def masked_phone(e164: str | None) -> str:
    """A phone number shown with only its last digits, as on the challenge page."""
    digits = (e164 or "")[-4:]
    return f"•••• {digits}" if digits else ""
