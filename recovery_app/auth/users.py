"""Creating accounts and users (CLI, demo data, invitations)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from ..domain import DomainError
from ..extensions import db
from ..models import Account, User
from ..models.users import ROLES, SELLER_ROLES
from .passwords import hash_password, password_problems


class UserError(DomainError):
    """A user could not be created; the message says why."""


class AddressTaken(UserError):
    """Another login has this e-mail address: found before, or refused by the
    unique index when two units took the address at the same moment."""


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


# An address mail can be sent to without quoting: a dot-atom before the @ (RFC
# 5322 atext, dots only between characters, at most 64) and a domain of at
# least two labels of letters, digits and inner hyphens (letters of any
# script: an internationalised domain). A comma, a semicolon or angle brackets
# would otherwise change what a To: header says.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)[^\W_](?:[^\W_]|-){0,62}(?<!-)")


def valid_email(email: str) -> bool:
    local, at, domain = email.partition("@")
    if not at or len(email) > 254 or len(local) > 64 or not _LOCAL.fullmatch(local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


# Built once: every sign-in runs it (building a statement costs about what running it does).
_BY_EMAIL = select(User).where(User.email == bindparam("email"))


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(_BY_EMAIL, {"email": normalise_email(email)}).scalar_one_or_none()


def get_or_create_account(name: str, now: datetime) -> Account:
    account = db.session.execute(
        select(Account).where(func.lower(Account.name) == name.strip().lower())
    ).scalar_one_or_none()
    if account is None:
        account = Account(name=name.strip(), created_at=now)
        db.session.add(account)
        db.session.flush()
    return account


def create_user(
    *,
    email: str,
    password: str,
    role: str,
    now: datetime,
    account: Account | None = None,
    display_name: str = "",
    romanised_name: str = "",
    locale: str = "ja",
    time_zone: str | None = None,
    check_password: bool = True,
) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not valid_email(email):
        raise UserError("that is not a valid e-mail address")
    if role in SELLER_ROLES and account is None:
        raise UserError("seller users belong to an account (--account NAME)")
    if role not in SELLER_ROLES and account is not None:
        raise UserError("staff users do not belong to a seller account")
    if find_user_by_email(email) is not None:
        raise AddressTaken("a user with that e-mail address already exists")
    if check_password:
        problems = password_problems(password, email=email, account_name=account.name if account else "")
        if problems:
            raise UserError(" ".join(problems))
    password_hash = hash_password(password)
    with address_kept_unique(email):  # the user is made inside: its account lists it only if it is saved
        user = User(
            email=email,
            password_hash=password_hash,
            role=role,
            account=account,
            display_name=display_name,
            romanised_name=romanised_name,
            locale=locale,
            time_zone=time_zone or ("Asia/Tokyo" if locale == "ja" else "UTC"),
            must_enroll_2sv=True,
            session_epoch=0,
            created_at=now,
            password_changed_at=now,
            failed_password_count=0,
            failed_code_count=0,
            consecutive_failures=0,
        )
        db.session.add(user)
    return user


@contextmanager
def address_kept_unique(email: str) -> Iterator[None]:
    """Write a user's e-mail address (a new user, a changed address) in a
    SAVEPOINT. When another unit took the same address at the same moment, the
    unique index refuses the second: that becomes ``AddressTaken``, the
    savepoint's writes are undone, and the unit can still answer and commit."""
    try:
        with db.session.begin_nested():
            yield
    except IntegrityError:
        if find_user_by_email(email) is None:  # some other constraint: a bug, not a race
            raise
        raise AddressTaken("a user with that e-mail address already exists") from None
