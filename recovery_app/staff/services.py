"""The rules of staff management, for managers only.

* The staff list: reviewers and managers, and the invitations waiting for an
  answer. A manager moves a member of staff between reviewer and manager (never
  themselves); their sessions end, so the new rights apply from their next
  sign-in; audited (``user.role_changed``).
* Invitations onto the staff use the invitation links of the account feature
  (single use, ``RECOVERY_INVITATION_HOURS``); accepting one makes a reviewer
  or manager who must enroll 2SV at first sign-in. Audited (``staff.invited``,
  ``staff.invitation_cancelled``; ``staff.joined`` on acceptance). An address
  that already has a login gets the same answer and a notice instead of a link.
* The user search: any user by e-mail, with their open sessions; a manager ends
  every session of a user (ASVS 7.4.5) or lifts their attempt locks, audited
  (``user.sessions_ended``, ``user.unlocked``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from .. import audit
from ..account.services import INVITE, check_invitation_address, issue_invitation
from ..auth.events import record_event
from ..auth.services import has_attempt_locks, unlock
from ..auth.sessions import bump_epoch, end_all_sessions
from ..auth.users import find_user_by_email, normalise_email
from ..database import lock_row
from ..domain import DomainError
from ..extensions import db
from ..models import ActionToken, User, UserSession
from ..models.users import STAFF_ROLES

PAGE_SIZE = 50


class StaffError(DomainError):
    """A refused staff change, with a message for the page or the form."""


class NotFound(Exception):
    """No such user or invitation here (the view answers 404)."""


# --- the staff list and roles ----------------------------------------------------


@dataclass
class StaffPage:
    staff: list[User]
    invitations: list[ActionToken]


def _waiting_invitations(now: datetime):
    # The link of a manager who has since left or become a reviewer no longer works (account.services).
    managers = select(User.id).where(User.role == "manager", User.disabled_at.is_(None))
    return (
        ActionToken.purpose == INVITE,
        ActionToken.account_id.is_(None),
        ActionToken.role.in_(STAFF_ROLES),
        ActionToken.used_at.is_(None),
        ActionToken.expires_at > now,
        ActionToken.created_by_id.in_(managers),
    )


def staff_page(now: datetime) -> StaffPage:
    staff = (
        db.session.execute(
            select(User).where(User.role.in_(STAFF_ROLES)).order_by(User.role, User.display_name, User.email)
        )
        .scalars()
        .all()
    )
    invitations = (
        db.session.execute(
            select(ActionToken)
            .where(*_waiting_invitations(now))
            .order_by(ActionToken.created_at.desc(), ActionToken.id)
        )
        .scalars()
        .all()
    )
    return StaffPage(list(staff), list(invitations))


def change_role(
    manager: User, user_id: int, role: str, *, now: datetime, address: str | None = None, browser: str | None = None
) -> User:
    """A manager moves a staff member between reviewer and manager. Their
    sessions end (the new rights apply from their next sign-in); audited."""
    if role not in STAFF_ROLES:
        raise StaffError(_l("Choose reviewer or manager."))
    # Both rows, so that two managers changing each other's roles at once take
    # turns: the second is then no longer a manager, and the staff is never
    # left without one.
    lock_row(User, manager.id, user_id)
    if manager.role != "manager":
        raise StaffError(_l("Only a manager can change roles, and you are no longer one."))
    user = db.session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        raise StaffError(_l("That person is not on the staff list."))
    if user.id == manager.id:
        raise StaffError(_l("You cannot change your own role; ask another manager."))
    if user.role == role:
        raise StaffError(_l("%(name)s already has that role."), name=user.display_name or user.email)
    previous = user.role
    user.role = role
    bump_epoch(user)
    db.session.flush()
    audit.record(
        "user.role_changed",
        now=now,
        actor=manager,
        subject_type="user",
        subject_id=user.id,
        details={"from": previous, "to": role},
        address=address,
        browser=browser,
    )
    return user


# --- invitations onto the staff --------------------------------------------------


def invite(
    manager: User, email: str, role: str, locale: str, now: datetime, *, address: str | None, browser: str | None
) -> str:
    """Invite ``email`` to join the staff as ``role``; returns the normalised address.

    An address whose login is already on the staff gets a clear message (the
    manager sees the staff list anyway). Any other address with a login gets the
    same answer and the same work as a new one, and a notice instead of a link.
    """
    if role not in STAFF_ROLES:
        raise StaffError(_l("Choose reviewer or manager."), field="role")
    try:
        email = check_invitation_address(email, locale)
    except DomainError as error:
        raise StaffError(error.message, field=error.field, **error.values) from None
    existing = find_user_by_email(email)
    if existing is not None and existing.is_staff:
        raise StaffError(_l("%(email)s is already on the staff list."), field="email", email=email)
    row = issue_invitation(
        manager,
        email,
        locale,
        now,
        role=role,
        account=None,
        templates=("staff/email/invitation", "staff/email/invitation_existing_login"),
        staff_role=role,
    )
    record_event(manager, "invited", now, address=address, browser=browser, invited=email, role=role)
    audit.record(
        "staff.invited",
        now=now,
        actor=manager,
        subject_type="invitation",
        subject_id=row.id,
        details={"email": email, "role": role, "locale": locale},
        address=address,
        browser=browser,
    )
    return email


def cancel_invitation(
    manager: User, invitation_id: int, now: datetime, *, address: str | None = None, browser: str | None = None
) -> str:
    """Withdraw a waiting invitation onto the staff; its link stops working. Audited."""
    row = db.session.get(ActionToken, invitation_id)
    if row is None or row.purpose != INVITE or row.account_id is not None or row.role not in STAFF_ROLES:
        raise NotFound
    cancelled = db.session.execute(
        update(ActionToken).where(ActionToken.id == row.id, ActionToken.used_at.is_(None)).values(used_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    if cancelled:
        audit.record(
            "staff.invitation_cancelled",
            now=now,
            actor=manager,
            subject_type="invitation",
            subject_id=row.id,
            details={"email": row.email, "role": row.role},
            address=address,
            browser=browser,
        )
    return row.email


# --- the user search ---------------------------------------------------------------


@dataclass
class UserRow:
    user: User
    open_sessions: int


def find_users(query: str, now: datetime) -> list[UserRow]:
    """Users whose e-mail contains ``query`` (all, when empty), with their open sessions."""
    statement = select(User).order_by(User.email).limit(PAGE_SIZE)
    query = normalise_email(query)
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(User.email.like(f"%{escaped}%", escape="\\"))
    users = list(db.session.execute(statement).scalars())
    counts = (
        dict(
            db.session.execute(
                select(UserSession.user_id, func.count())
                .where(UserSession.user_id.in_([u.id for u in users]), UserSession.ended_at.is_(None))
                .group_by(UserSession.user_id)
            ).all()
        )
        if users
        else {}
    )
    return [UserRow(user, counts.get(user.id, 0)) for user in users]


def end_sessions_for(
    manager: User, user_id: int, now: datetime, *, address: str | None, browser: str | None
) -> tuple[User, int]:
    """A manager ends every session of any user (ASVS 7.4.5); audited."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound
    bump_epoch(user)
    ended = end_all_sessions(user, now, "ended_by_staff")
    record_event(user, "sessions_ended", now, address=address, browser=browser, count=ended, by=manager.id)
    audit.record(
        "user.sessions_ended",
        now=now,
        actor=manager,
        subject_type="user",
        subject_id=user.id,
        details={"sessions_ended": ended},
        address=address,
        browser=browser,
    )
    return user, ended


def unlock_for(
    manager: User, user_id: int, now: datetime, *, address: str | None, browser: str | None
) -> tuple[User, bool]:
    """A manager lifts the attempt locks of a user (the 100-failure hard lock the
    lock e-mail tells the user to ask a manager about); audited. Returns the
    user and whether there was anything to lift: a second click, or a second
    manager at the same moment, finds the user unlocked and writes nothing."""
    lock_row(User, user_id)
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound
    if not has_attempt_locks(user):
        return user, False
    was_locked = user.hard_locked_at is not None
    unlock(user, manager, now)
    audit.record(
        "user.unlocked",
        now=now,
        actor=manager,
        subject_type="user",
        subject_id=user.id,
        details={"was_hard_locked": was_locked},
        address=address,
        browser=browser,
    )
    return user, True
