"""Sign-in state: the password step, full sessions, and ending them.

A browser moves through two states:

* *password step passed* (``session["pending"]``): the password was right. Only
  the 2SV challenge, forced enrollment and the start of a recovery case are
  reachable in this state.
* *signed in*: Flask-Login holds ``"<user id>:<session epoch>"`` and the
  session carries a random token whose hash names a ``user_sessions`` row.
  The row is what lets users list and end sessions, and lets the server end a
  session for good at sign-out (the cookie alone proves nothing afterwards).

A session dies when its row is ended, when the user's epoch moves on, when it
has been idle too long or when it reaches its absolute lifetime.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import wraps

from flask import abort, current_app, g, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..database import best_effort_write, core_execute, remembered, update_row
from ..extensions import db, login_manager
from ..models import PasswordStep, User, UserSession
from ..models.base import utcnow
from ..web import row_id

PENDING_KEY = "pending"
SID_KEY = "sid"
SIGNED_OUT_REASON_KEY = "signed_out_reason"
# last_seen_at is written at most this often, so reads stay reads.
TOUCH_EVERY = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def limits_for(user: User) -> tuple[timedelta, timedelta]:
    """(idle timeout, absolute lifetime): staff get shorter ones than sellers."""
    config = current_app.config
    if user.is_staff:
        return (
            timedelta(minutes=config["RECOVERY_STAFF_IDLE_MINUTES"]),
            timedelta(hours=config["RECOVERY_STAFF_SESSION_HOURS"]),
        )
    return (
        timedelta(minutes=config["RECOVERY_SELLER_IDLE_MINUTES"]),
        timedelta(hours=config["RECOVERY_SELLER_SESSION_HOURS"]),
    )


# --- the password step -------------------------------------------------------


def _insert_with_token(statement, user: User, now: datetime, address: str | None, browser: str | None) -> str:
    """Add a password step or a session row for ``user`` with a new random
    token; the row keeps only the token's hash. Returns the token."""
    token = secrets.token_urlsafe(32)
    core_execute(
        statement,
        {
            "user_id": user.id,
            "token_hash": token_hash(token),
            "now": now,
            "address": address,
            "browser": (browser or "")[:300],
        },
    )
    return token


_NEW_STEP = insert(PasswordStep).values(  # built once: every right password adds one
    user_id=bindparam("user_id"),
    token_hash=bindparam("token_hash"),
    created_at=bindparam("now"),
    address=bindparam("address"),
    browser=bindparam("browser"),
)


def mark_password_passed(user: User, now: datetime, *, address: str | None = None, browser: str | None = None) -> None:
    """Remember, server-side and in this browser, that ``user`` gave the right password."""
    session.clear()  # a fresh session at every sign-in: nothing set before it survives
    token = _insert_with_token(_NEW_STEP, user, now, address, browser)
    session[PENDING_KEY] = {"uid": user.id, "epoch": user.session_epoch, "at": now.isoformat(), "token": token}


# Built once: every request between the two steps reads it.
_STEP_AND_USER = (
    select(PasswordStep, User)
    .join(User, User.id == PasswordStep.user_id)
    .where(PasswordStep.token_hash == bindparam("token_hash"))
)


def _pending_step() -> tuple[dict, PasswordStep] | None:
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        return None
    # Read once per transaction: the challenge reads it to know the user, and
    # ends it when the code is right. The user comes in the same statement
    # (pending_user asks for it next) and stays in the identity map meanwhile.
    memo = remembered()
    known = memo.get(PENDING_KEY)
    if known is None or known[0] != data["token"]:
        found = db.session.execute(_STEP_AND_USER, {"token_hash": token_hash(data["token"])}).first()
        known = memo[PENDING_KEY] = (data["token"], *(found or (None, None)))
    step = known[1]
    return (data, step) if step is not None else None


def pending_user(now: datetime | None = None) -> User | None:
    """The user who passed the password step in this browser, if still valid:
    its server-side row is live, the user's epoch has not moved, not idle."""
    found = _pending_step()
    if found is None:
        return None
    data, step = found
    try:
        user_id, epoch, at = int(data["uid"]), int(data["epoch"]), datetime.fromisoformat(data["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if step.ended_at is not None or step.user_id != user_id:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_epoch != epoch or not user.is_active:
        return None
    idle, _ = limits_for(user)
    if (now or utcnow()) - at > idle:
        return None
    return user


def end_password_step(now: datetime, reason: str) -> None:
    """End this browser's password step, if it has one."""
    found = _pending_step()
    if found is not None and found[1].ended_at is None:
        update_row(found[1], ended_at=now, end_reason=reason)
    session.pop(PENDING_KEY, None)


# --- full sessions -----------------------------------------------------------


_NEW_SESSION = insert(UserSession).values(  # built once: every completed sign-in adds one
    user_id=bindparam("user_id"),
    token_hash=bindparam("token_hash"),
    created_at=bindparam("now"),
    last_seen_at=bindparam("now"),
    address=bindparam("address"),
    browser=bindparam("browser"),
)


def begin_session(user: User, now: datetime, address: str | None, browser: str | None) -> None:
    """Sign ``user`` in after both steps: a new session, a new server-side row."""
    end_password_step(now, "completed")
    session.clear()
    token = _insert_with_token(_NEW_SESSION, user, now, address, browser)
    session[SID_KEY] = token
    login_user(user)


def current_session_row() -> UserSession | None:
    token = session.get(SID_KEY)
    if not isinstance(token, str):
        return None
    return db.session.execute(
        select(UserSession).where(UserSession.token_hash == token_hash(token))
    ).scalar_one_or_none()


def renew_session_token(row: UserSession) -> None:
    """Give the signed-in browser a new session token after it proved itself
    again (ASVS 7.2.4): a copy of the cookie taken before stops working."""
    token = secrets.token_urlsafe(32)
    row.token_hash = token_hash(token)
    session[SID_KEY] = token


def end_session(row: UserSession, now: datetime, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at = now
        row.end_reason = reason


def end_all_sessions(user: User, now: datetime, reason: str, *, keep: UserSession | None = None) -> int:
    """End every open session of ``user`` (but ``keep``); returns how many ended."""
    query = update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    result = db.session.execute(query.values(ended_at=now, end_reason=reason))
    end_password_steps(user, now, reason)
    return result.rowcount


def end_password_steps(user: User, now: datetime, reason: str) -> None:
    """Every browser half-way through signing in as ``user`` starts again."""
    db.session.execute(
        update(PasswordStep)
        .where(PasswordStep.user_id == user.id, PasswordStep.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )


# Built once; one statement, so that two at once (a sign-out everywhere while a
# password is changed) both move the epoch: with a read, then a write, the
# second would write the number the first had written, and a session stamped
# with it by one would survive the other.
_BUMP_EPOCH = (
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(session_epoch=func.coalesce(User.session_epoch, 0) + 1)
    .returning(User.session_epoch)
)


def bump_epoch(user: User) -> None:
    """End every session of the user, signed-in or half-way, at its next request."""
    (epoch,) = core_execute(_BUMP_EPOCH, {"user_id": user.id}).one()
    set_committed_value(user, "session_epoch", epoch)


def sign_out(now: datetime, reason: str = "signed_out") -> None:
    row = current_session_row()
    if row is not None:
        end_session(row, now, reason)
    end_password_step(now, reason)
    logout_user()
    session.clear()


@login_manager.user_loader
def load_user(user_key: str) -> User | None:
    try:
        text_id, epoch_text = user_key.split(":")
        user_id, epoch = row_id(text_id), int(epoch_text)
    except (ValueError, AttributeError):
        return None
    if user_id is None:  # not a row's id: no user, and no number the database would refuse
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_epoch != epoch or not user.is_active or user.must_enroll_2sv:
        _signed_out("ended")
        return None
    row = current_session_row()
    if row is None or row.user_id != user.id or row.ended_at is not None:
        _signed_out("ended")
        return None
    now = utcnow()
    idle, lifetime = limits_for(user)
    ended = "idle" if now - row.last_seen_at > idle else "lifetime" if now - row.created_at > lifetime else None
    if ended is not None:
        with best_effort_write():  # a dead session stays dead even if this write waits for later
            end_session(row, now, ended)
            db.session.flush()
        _signed_out(ended)
        return None
    # A page that asks for updates by itself (``g.passive_request``) does not
    # keep an idle session alive (ASVS 7.3.1).
    if now - row.last_seen_at > TOUCH_EVERY and not g.get("passive_request"):
        with best_effort_write():
            row.last_seen_at = now
            db.session.flush()
    g.session_row = row
    return user


def _signed_out(reason: str) -> None:
    """Forget the dead session and remember why, for the sign-in page to say."""
    for key in ("_user_id", "_fresh", "_id", SID_KEY):
        session.pop(key, None)
    session[SIGNED_OUT_REASON_KEY] = reason


def pop_signed_out_reason() -> str | None:
    return session.pop(SIGNED_OUT_REASON_KEY, None)


# --- fresh second factor (ASVS 7.5.1) ------------------------------------------

FRESH_KEY = "fresh_code_at"


def mark_fresh_code(now: datetime) -> None:
    """The signed-in user just passed a second factor again (the confirm page)."""
    session[FRESH_KEY] = now.isoformat()


def has_fresh_code(now: datetime) -> bool:
    try:
        at = datetime.fromisoformat(session.get(FRESH_KEY, ""))
    except (TypeError, ValueError):
        return False
    window = timedelta(minutes=current_app.config["RECOVERY_FRESH_CODE_MINUTES"])
    return timedelta(0) <= now - at <= window


def fresh_code_required(view):
    """Changes to sign-in settings ask for a code first, valid 10 minutes.
    Without one, the user is sent to ``auth.confirm`` and brought back after."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not has_fresh_code(utcnow()):
            from flask import redirect, request, url_for

            from ..web import safe_next, same_site_path

            target = request.full_path if request.method == "GET" else same_site_path(request.referrer)
            return redirect(url_for("auth.confirm", next=safe_next(target)))
        return view(*args, **kwargs)

    return wrapped


# --- access rules ------------------------------------------------------------


def roles_required(*roles: str):
    """Only signed-in users with one of ``roles``. Visitors are sent to sign in;
    signed-in users of another role get a 404, so that staff pages cannot even
    be found by sellers."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(404)
            return view(*args, **kwargs)

        return wrapped

    return decorator
