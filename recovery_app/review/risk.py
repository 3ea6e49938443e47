"""Which recovery cases need a second reviewer's approval (four eyes).

A case is high-risk when, in the 7 days before it was opened, the user's
password or e-mail address changed, or when an earlier recovery case of the
user was rejected for suspected fraud: the pattern of an account takeover that
is now trying to shed the real owner's second factor.

The pre-checks add one more reason of their own after submission: a document
that matches another user's document (``document_reused``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..extensions import db
from ..models import Case, SecurityEvent, User
from ..prechecks.services import REUSED, RISK_REASON_LABEL

WINDOW = timedelta(days=7)

PASSWORD_CHANGED = "password_changed"
EMAIL_CHANGED = "email_changed"
EARLIER_FRAUD = "earlier_case_rejected_for_fraud"
DOCUMENT_REUSED = REUSED  # set by the pre-checks, not by assess()

REASON_LABELS = {
    PASSWORD_CHANGED: _l("Password changed in the 7 days before the case was opened"),
    EMAIL_CHANGED: _l("E-mail address changed in the 7 days before the case was opened"),
    EARLIER_FRAUD: _l("An earlier recovery case was rejected for suspected fraud"),
    DOCUMENT_REUSED: RISK_REASON_LABEL,
}


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment <= end


def assess(user: User, opened_at: datetime) -> list[str]:
    """The reasons ``user``'s case opened at ``opened_at`` is high-risk (empty: it is not)."""
    start = opened_at - WINDOW
    reasons: list[str] = []
    kinds = set(
        db.session.execute(
            select(SecurityEvent.kind).where(
                SecurityEvent.user_id == user.id,
                SecurityEvent.kind.in_((PASSWORD_CHANGED, EMAIL_CHANGED)),
                SecurityEvent.at >= start,
                SecurityEvent.at <= opened_at,
            )
        ).scalars()
    )
    # The password set when the user was created is not a change.
    password_changed = user.password_changed_at is not None and user.password_changed_at != user.created_at
    if PASSWORD_CHANGED in kinds or (password_changed and _within(user.password_changed_at, start, opened_at)):
        reasons.append(PASSWORD_CHANGED)
    if EMAIL_CHANGED in kinds or _within(user.email_changed_at, start, opened_at):
        reasons.append(EMAIL_CHANGED)
    earlier_fraud = db.session.execute(
        select(Case.id).where(
            Case.user_id == user.id,
            Case.status == "rejected",
            Case.reason_code == "suspected_fraud",
            Case.created_at < opened_at,
        ).limit(1)
    ).first()
    if earlier_fraud is not None:
        reasons.append(EARLIER_FRAUD)
    return reasons


def ensure_assessed(case: Case, now: datetime) -> bool:
    """Assess ``case`` once and keep the result on it; a True set by another
    check (with its own reason) is never turned back to False."""
    if case.risk_assessed_at is not None:
        return False
    found = assess(case.user, case.created_at)
    existing = list(case.risk_reasons or [])
    case.risk_reasons = existing + [reason for reason in found if reason not in existing]
    case.high_risk = bool(case.high_risk) or bool(found)
    case.risk_assessed_at = now
    return True


def reason_label(code: str) -> str:
    label = REASON_LABELS.get(code)
    return str(label) if label is not None else code
