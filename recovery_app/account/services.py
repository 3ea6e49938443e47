"""The rules for the people on a seller account and for their own sign-in details.

* Invitations: an owner invites an address; the link is single use and expires
  (``RECOVERY_INVITATION_HOURS``). The invited person sets a password and is
  made to enroll their own 2SV at first sign-in: there is no shared login.
* Removing a user disables them and ends every session they hold.
* Forgotten passwords: a single-use link valid ``RECOVERY_RESET_MINUTES``.
  Setting a new password signs nobody in (2SV is never skipped, ASVS 6.4.3)
  and ends every session of the user.
* Changing one's password (giving the current one, ASVS 6.2.3) or e-mail.
* Sessions: the user lists and ends their own (ASVS 7.5.2); a manager ends all
  of anyone's (ASVS 7.4.5, audited).

E-mailed links carry 32 random bytes from ``secrets``; only their SHA-256 is
stored, a conditional UPDATE claims a link so it works once, and expired links
are refused (ASVS 6.4.1). Forgot-password and invitations do the same work and
give the same answer whether or not the address has a login (ASVS 6.3.8).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from .. import audit
from ..auth.events import record_event
from ..auth.passwords import hash_password, password_problems, verify_password
from ..auth.sessions import bump_epoch, end_all_sessions, end_password_steps, end_session, limits_for, token_hash
from ..auth.users import (
    AddressTaken,
    address_kept_unique,
    create_user,
    find_user_by_email,
    normalise_email,
    valid_email,
)
from ..database import lock_row, one_at_a_time
from ..domain import DomainError
from ..extensions import db
from ..models import Account, ActionToken, User, UserSession
from ..models.users import SELLER_ROLES, STAFF_ROLES
from ..notify import queue_email

INVITE = "invite"
RESET = "reset"
MAX_NAME_LENGTH = 200
MAX_TOKEN_LENGTH = 100


class AccountError(DomainError):
    """Bad input with a message for the form; ``field`` names the form field it belongs to."""


class LinkInvalid(Exception):
    """An e-mailed link that is forged, used, superseded or expired: one answer for all."""


class NotOnAccount(Exception):
    """The thing asked for does not exist for this user (the view answers 404)."""


# --- links -------------------------------------------------------------------


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def _link(endpoint: str, token: str) -> str:
    # The configured base address, never the request's Host header: a forged
    # Host must not be able to point a reset link at someone else's server.
    return current_app.config["RECOVERY_BASE_URL"].rstrip("/") + url_for(endpoint, token=token)


def _retire_links(purpose: str, now: datetime, **where) -> None:
    """Make every unused link of ``purpose`` matching ``where`` unusable. Units
    replacing links to one address take turns, so that each one retires the
    link the one before it stored: otherwise two at once (a double click, two
    managers) would each retire only older links and leave both new ones live."""
    one_at_a_time(f"links:{purpose}:" + ",".join(f"{column}={value}" for column, value in sorted(where.items())))
    query = update(ActionToken).where(ActionToken.purpose == purpose, ActionToken.used_at.is_(None))
    for column, value in where.items():
        query = query.where(getattr(ActionToken, column) == value)
    db.session.execute(query.values(used_at=now), execution_options={"synchronize_session": False})


def usable_link(token: str, purpose: str, now: datetime) -> ActionToken:
    """The stored link for ``token`` if it may still be used, else ``LinkInvalid``."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkInvalid
    row = db.session.execute(
        select(ActionToken).where(ActionToken.token_hash == token_hash(token), ActionToken.purpose == purpose)
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise LinkInvalid
    if purpose == RESET:
        user = db.session.get(User, row.user_id) if row.user_id else None
        if user is None or not user.is_active or user.email != row.email:
            raise LinkInvalid
    elif find_user_by_email(row.email) is not None or not _invitation_still_stands(row):
        raise LinkInvalid
    return row


def _invitation_still_stands(row: ActionToken) -> bool:
    """An invitation onto a seller account names that account and a seller role;
    one onto the staff names no account and a staff role, and stands only while
    the manager who sent it is still an active manager (a demoted or removed
    manager's invitations grant nothing)."""
    if row.account_id is not None:
        return row.role in SELLER_ROLES
    if row.role not in STAFF_ROLES or row.created_by_id is None:
        return False
    inviter = db.session.get(User, row.created_by_id)
    return inviter is not None and inviter.is_active and inviter.role == "manager"


def _claim(row: ActionToken, now: datetime) -> None:
    """Use the link once: of two requests racing with it, only one wins."""
    claimed = db.session.execute(
        update(ActionToken).where(ActionToken.id == row.id, ActionToken.used_at.is_(None)).values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if claimed.rowcount != 1:
        raise LinkInvalid
    row.used_at = now


def _check_new_password(password: str, confirm: str, *, email: str, account_name: str = "") -> None:
    problems = password_problems(password, email=email, account_name=account_name)
    if problems:
        raise AccountError(" ".join(problems), field="password")
    if password != confirm:
        raise AccountError(_l("The two passwords are not the same. Type the new password twice."), field="confirm")


# --- forgotten password ------------------------------------------------------


def request_password_reset(email: str, locale: str, now: datetime, *, address: str | None, browser: str | None) -> None:
    """E-mail a reset link if ``email`` belongs to an active user; otherwise tell
    the address that it has no login. The answer on screen is the same.

    Both paths make a token, store a link row, render and queue one message and
    write a security event, so neither the answer nor its timing tells whether
    the address has a login (ASVS 6.3.8). Only a real user's message has a link.
    """
    email = normalise_email(email)
    user = find_user_by_email(email)
    known = user is not None and user.is_active
    token, digest = _new_token()
    minutes = current_app.config["RECOVERY_RESET_MINUTES"]
    _retire_links(RESET, now, email=email)
    db.session.add(
        ActionToken(
            purpose=RESET,
            token_hash=digest,
            user_id=user.id if known else None,
            email=email,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    link = _link("account.reset_password", token)
    if known:
        queue_email(user.email, "account/email/password_reset", user.locale, now, link=link, minutes=minutes)
    else:
        # Someone who mistyped their own address learns to try another one;
        # the rate limits keep this from being a way to mail strangers.
        queue_email(email, "account/email/password_reset_no_login", locale, now, email=email)
    record_event(
        user if known else None, "password_reset_requested", now, address=address, browser=browser, matched=known
    )


def reset_password(
    token: str, password: str, confirm: str, now: datetime, *, address: str | None, browser: str | None
) -> User:
    """Set a new password through a reset link. Signs nobody in: the next
    sign-in still asks for a code (ASVS 6.4.3); every session of the user ends."""
    row = usable_link(token, RESET, now)
    user = db.session.get(User, row.user_id)
    _check_new_password(password, confirm, email=user.email, account_name=user.account.name if user.account else "")
    _claim(row, now)
    _retire_links(RESET, now, user_id=user.id)
    _set_password(user, password, now)
    user.failed_password_count = 0
    user.password_delay_until = None
    bump_epoch(user)
    end_all_sessions(user, now, "password_reset")
    record_event(user, "password_changed", now, address=address, browser=browser, via="reset")
    _notify(user.email, "account/email/password_changed", user, now)
    return user


def _set_password(user: User, password: str, now: datetime) -> None:
    """A new password; every browser half-way through signing in with the old one starts again."""
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    end_password_steps(user, now, "password_changed")


def _notify(to: str, template: str, user: User, now: datetime, **context) -> None:
    queue_email(to, template, user.locale, now, email=user.email, **context)


# --- the people on a seller account --------------------------------------------


@dataclass
class AccountPeople:
    users: list[User]
    invitations: list[ActionToken]


def account_people(owner: User, now: datetime) -> AccountPeople:
    users = (
        db.session.execute(
            select(User).where(User.account_id == owner.account_id).order_by(User.disabled_at.is_not(None), User.id)
        )
        .scalars()
        .all()
    )
    invitations = (
        db.session.execute(
            select(ActionToken)
            .where(
                ActionToken.purpose == INVITE,
                ActionToken.account_id == owner.account_id,
                ActionToken.used_at.is_(None),
                ActionToken.expires_at > now,
            )
            .order_by(ActionToken.created_at.desc())
        )
        .scalars()
        .all()
    )
    return AccountPeople(list(users), list(invitations))


def issue_invitation(
    inviter: User,
    email: str,
    locale: str,
    now: datetime,
    *,
    role: str,
    account: Account | None,
    templates: tuple[str, str],
    **context,
) -> ActionToken:
    """Store a single-use invitation link for ``email`` (replacing any older one
    to the same place) and e-mail it; returns the stored row.

    ``templates`` are the message with the link and the notice sent instead to
    an address that already has a login: that address gets no link (one login
    per address), but the same work is done and the inviter sees the same answer.
    """
    hours = current_app.config["RECOVERY_INVITATION_HOURS"]
    token, digest = _new_token()
    _retire_links(INVITE, now, email=email, account_id=account.id if account else None)
    row = ActionToken(
        purpose=INVITE,
        token_hash=digest,
        account_id=account.id if account else None,
        email=email,
        role=role,
        created_by_id=inviter.id,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        note=locale,
    )
    db.session.add(row)
    db.session.flush()
    context = {"inviter": inviter.display_name or inviter.email, "hours": hours, **context}
    existing = find_user_by_email(email)
    with_link, existing_login = templates
    if existing is None:
        queue_email(email, with_link, locale, now, link=_link("account.accept_invitation", token), **context)
    else:
        queue_email(email, existing_login, existing.locale, now, **context)
    return row


def check_invitation_address(email: str, locale: str) -> str:
    """The normalised address, or an ``AccountError`` for a bad address or language."""
    email = normalise_email(email)
    if not valid_email(email):
        raise AccountError(_l("Enter an e-mail address like name@example.com."), field="email")
    if locale not in current_app.config["RECOVERY_LANGUAGES"]:
        raise AccountError(_l("Choose one of the languages listed."), field="locale")
    return email


def invite(owner: User, email: str, locale: str, now: datetime, *, address: str | None, browser: str | None) -> str:
    """Invite ``email`` onto the owner's account; returns the normalised address.

    An address that already has a login on another account gets the same answer
    and the same work (a link row that is never sent), and its owner a notice
    instead of a link: the inviting owner learns nothing about other accounts.
    """
    email = check_invitation_address(email, locale)
    existing = find_user_by_email(email)
    if existing is not None and existing.account_id == owner.account_id:
        raise AccountError(_l("This address already has a login on this account."), field="email")
    issue_invitation(
        owner,
        email,
        locale,
        now,
        role="seller_user",
        account=owner.account,
        templates=("account/email/invitation", "account/email/invitation_existing_login"),
        account_name=owner.account.name,
    )
    record_event(owner, "invited", now, address=address, browser=browser, invited=email)
    return email


def cancel_invitation(owner: User, invitation_id: int, now: datetime) -> str:
    """Withdraw a waiting invitation of the owner's account (a mistyped address, say)."""
    row = db.session.get(ActionToken, invitation_id)
    if row is None or row.purpose != INVITE or owner.account_id is None or row.account_id != owner.account_id:
        raise NotOnAccount
    if row.used_at is None:
        row.used_at = now
    return row.email


def invitation_for(token: str, now: datetime) -> tuple[ActionToken, Account | None]:
    """The invitation behind ``token`` and the seller account it is for (None
    for an invitation onto the staff), or ``LinkInvalid``."""
    row = usable_link(token, INVITE, now)
    if row.account_id is None:
        return row, None
    account = db.session.get(Account, row.account_id)
    if account is None:
        raise LinkInvalid
    return row, account


def accept_invitation(
    token: str,
    display_name: str,
    password: str,
    confirm: str,
    now: datetime,
    *,
    address: str | None,
    browser: str | None,
    locale: str | None = None,
) -> User:
    """Turn an invitation into the person's own login: a user of the seller
    account, or a reviewer or manager for an invitation onto the staff. 2SV
    enrollment comes at first sign-in; the inviter is told. The new user's
    language is ``locale``, the one they are using; else the inviter's choice."""
    row, account = invitation_for(token, now)
    # One line of text: the name appears in e-mails and pages, never as markup or extra lines.
    display_name = " ".join((display_name or "").split())
    if len(display_name) > MAX_NAME_LENGTH:
        raise AccountError(_l("Use at most %(n)d characters.", n=MAX_NAME_LENGTH), field="display_name")
    _check_new_password(password, confirm, email=row.email, account_name=account.name if account else "")
    languages = current_app.config["RECOVERY_LANGUAGES"]
    try:
        with db.session.begin_nested():  # the link is used only if the login is made
            _claim(row, now)
            user = create_user(
                email=row.email,
                password=password,
                role=row.role or "seller_user",
                now=now,
                account=account,
                display_name=display_name,
                locale=next((code for code in (locale, row.note) if code in languages), languages[0]),
                check_password=False,
            )
    except AddressTaken:
        # The address got a login after the invitation went out (a changed address, another invitation).
        raise AccountError(
            _l("This e-mail address already has a login. Sign in with it, or ask for an invitation to another address.")
        ) from None
    user.must_enroll_2sv = True
    db.session.flush()
    record_event(user, "invited", now, address=address, browser=browser, accepted=True, invited_by=row.created_by_id)
    inviter = db.session.get(User, row.created_by_id) if row.created_by_id else None
    if account is None:
        audit.record(
            "staff.joined",
            now=now,
            actor=user,
            subject_type="user",
            subject_id=user.id,
            details={"role": user.role, "invitation_id": row.id, "invited_by": row.created_by_id},
            address=address,
            browser=browser,
        )
        if inviter is not None and inviter.is_active:
            _notify(inviter.email, "staff/email/joined", inviter, now, new_user=user.email, role=user.role)
    elif inviter is not None and inviter.is_active:
        _notify(
            inviter.email,
            "account/email/invitation_accepted",
            inviter,
            now,
            new_user=user.email,
            account_name=account.name,
        )
    return user


def account_user(owner: User, user_id: int) -> User:
    """A user of the owner's own account; anyone else's is ``NotOnAccount``."""
    user = db.session.get(User, user_id)
    if user is None or owner.account_id is None or user.account_id != owner.account_id:
        raise NotOnAccount
    return user


def remove_user(owner: User, user_id: int, now: datetime, *, address: str | None, browser: str | None) -> User:
    """Disable a user of the owner's account and end every session they hold (ASVS 7.4.2).

    Two submissions at once (a double click) take turns on the user's row: the
    second sees the user already removed and writes nothing, so the removal is
    recorded and audited once."""
    user = account_user(owner, user_id)
    if user.id == owner.id:
        raise AccountError(_l("You cannot remove yourself."))
    lock_row(User, user.id)
    if user.disabled_at is not None:
        return user
    user.disabled_at = now
    bump_epoch(user)
    ended = end_all_sessions(user, now, "removed")
    _retire_links(RESET, now, user_id=user.id)
    record_event(user, "user_removed", now, address=address, browser=browser, by=owner.id)
    audit.record(
        "account.user_removed",
        now=now,
        actor=owner,
        subject_type="user",
        subject_id=user.id,
        details={"account_id": owner.account_id, "sessions_ended": ended},
        address=address,
        browser=browser,
    )
    return user


# --- one's own password and e-mail ---------------------------------------------


def change_password(
    user: User, current: str, password: str, confirm: str, now: datetime, *, address: str | None, browser: str | None
) -> None:
    """Change the password, giving the current one (ASVS 6.2.3). Other sessions
    are not ended here: the user is offered that next (ASVS 7.4.3)."""
    if not verify_password(user.password_hash, current or ""):
        raise AccountError(_l("That is not your current password."), field="current_password")
    if password == current:
        raise AccountError(_l("The new password is the same as the current one."), field="password")
    _check_new_password(password, confirm, email=user.email, account_name=user.account.name if user.account else "")
    _set_password(user, password, now)
    _retire_links(RESET, now, user_id=user.id)
    record_event(user, "password_changed", now, address=address, browser=browser, via="settings")
    _notify(user.email, "account/email/password_changed", user, now)


def mask_email(email: str) -> str:
    """``n•••@example.com``: enough for the owner to recognise, not to copy."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def change_email(user: User, new_email: str, now: datetime, *, address: str | None, browser: str | None) -> None:
    """Move the sign-in address; both the old and the new address are told (ASVS 6.3.7)."""
    new_email = normalise_email(new_email)
    if not valid_email(new_email):
        raise AccountError(_l("Enter an e-mail address like name@example.com."), field="email")
    if new_email == user.email:
        raise AccountError(_l("That is already your e-mail address."), field="email")
    old_email = user.email
    try:
        with address_kept_unique(new_email):  # already taken, or taken by another login at this moment
            user.email = new_email
            user.email_changed_at = now
    except AddressTaken:
        raise AccountError(_l("Another login already uses this address. Choose another."), field="email") from None
    _retire_links(RESET, now, user_id=user.id)
    record_event(user, "email_changed", now, address=address, browser=browser, old=old_email, new=new_email)
    _notify(old_email, "account/email/email_changed_old", user, now, new_masked=mask_email(new_email))
    _notify(new_email, "account/email/email_changed_new", user, now)


# --- sessions ------------------------------------------------------------------


def _live(user: User, now: datetime):
    idle, lifetime = limits_for(user)
    return (
        UserSession.ended_at.is_(None),
        UserSession.last_seen_at > now - idle,
        UserSession.created_at > now - lifetime,
    )


def open_sessions(user: User, now: datetime) -> list[UserSession]:
    """The user's sessions that could still be used, most recently seen first."""
    return list(
        db.session.execute(
            select(UserSession)
            .where(UserSession.user_id == user.id, *_live(user, now))
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        ).scalars()
    )


def end_one_session(
    user: User, session_id: int, current: UserSession | None, now: datetime, *, address: str | None, browser: str | None
) -> None:
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != user.id:
        raise NotOnAccount
    if current is not None and row.id == current.id:
        raise AccountError(_l("This is the session you are using. To end it, sign out."))
    if row.ended_at is None:
        end_session(row, now, "ended_by_user")
        record_event(user, "sessions_ended", now, address=address, browser=browser, count=1)


def end_other_sessions(
    user: User, current: UserSession | None, now: datetime, *, address: str | None, browser: str | None
) -> int:
    """End every session but this one, including browsers half-way through
    signing in (the epoch moves on; the caller renews this browser's hold)."""
    bump_epoch(user)
    ended = end_all_sessions(user, now, "ended_by_user", keep=current)
    record_event(user, "sessions_ended", now, address=address, browser=browser, count=ended, scope="others")
    return ended


def save_language(user: User, code: str) -> None:
    """The language this user's e-mails and calls use, as they last chose it."""
    if user.locale != code and code in current_app.config["RECOVERY_LANGUAGES"]:
        user.locale = code
