"""Which recovery cases need a second reviewer's approval (four eyes).

A case is high-risk when, in the 7 days before it was opened, the user's
password or e-mail address changed, or when an earlier recovery case of the
user was rejected for suspected fraud: the pattern of an account takeover that
is now trying to shed the real owner's second factor.

The pre-checks add one more reason of their own after submission: a document
that matches another user's document (``document_reused``). A failed pre-check
on the newest documents (no face found, a wrong MRZ check digit, a document
expired when submitted) also makes the case high-risk: it is added when the
case file is opened and again at approval, so an approval never goes through
on one reviewer's word past a failed check.

One reason asks for a closer look without a second approval: the case was
opened (after the password step only, as every case is) from a browser and an
address that never signed in to this user before. An honest seller who lost
their phone often writes from a new phone, so this alone is not four eyes;
the reviewer reads it in words beside the documents.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..database import lock_row
from ..extensions import db
from ..models import Case, SecurityEvent, User
from ..prechecks.services import REUSED, RISK_REASON_LABEL, current_reason_codes

WINDOW = timedelta(days=7)

PASSWORD_CHANGED = "password_changed"
EMAIL_CHANGED = "email_changed"
EARLIER_FRAUD = "earlier_case_rejected_for_fraud"
DOCUMENT_REUSED = REUSED  # set by the pre-checks, not by assess()
UNKNOWN_PLACE = "opened_from_unknown_browser_and_address"
PRECHECK_NO_FACE = "precheck_no_face"
PRECHECK_CHECK_DIGIT = "precheck_check_digit"
PRECHECK_EXPIRED = "precheck_expired"
# Pre-check findings (their reason codes) that make a case high-risk.
PRECHECK_FINDINGS = {"no_face": PRECHECK_NO_FACE, "check_digit": PRECHECK_CHECK_DIGIT, "expired": PRECHECK_EXPIRED}
# Reasons that only ask for a closer look; every other reason means four eyes.
LOOK_CLOSELY_ONLY = frozenset({UNKNOWN_PLACE})

REASON_LABELS = {
    PASSWORD_CHANGED: _l("Password changed in the 7 days before the case was opened"),
    EMAIL_CHANGED: _l("E-mail address changed in the 7 days before the case was opened"),
    EARLIER_FRAUD: _l("An earlier recovery case was rejected for suspected fraud"),
    DOCUMENT_REUSED: RISK_REASON_LABEL,
    UNKNOWN_PLACE: _l(
        "Opened with only the password, from a browser and an address that never signed in to this "
        "user before: look closely"
    ),
    PRECHECK_NO_FACE: _l("Pre-check failed: no face found on the selfie or the document"),
    PRECHECK_CHECK_DIGIT: _l("Pre-check failed: a check digit of the machine-readable zone is wrong"),
    PRECHECK_EXPIRED: _l("Pre-check failed: the document had expired when the case was submitted"),
}


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment <= end


def assess(
    user: User, opened_at: datetime, opened_address: str | None = None, opened_browser: str | None = None
) -> list[str]:
    """The reasons ``user``'s case opened at ``opened_at`` (from that address and
    browser) is high-risk or worth a closer look (empty: neither)."""
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
        select(Case.id)
        .where(
            Case.user_id == user.id,
            Case.status == "rejected",
            Case.reason_code == "suspected_fraud",
            Case.created_at < opened_at,
        )
        .limit(1)
    ).first()
    if earlier_fraud is not None:
        reasons.append(EARLIER_FRAUD)
    if _never_seen(user, opened_address, opened_browser, opened_at):
        reasons.append(UNKNOWN_PLACE)
    return reasons


def _never_seen(user: User, address: str | None, browser: str | None, before: datetime) -> bool:
    """Whether neither the address nor the browser a case came from signed in
    to ``user`` before (over the whole history of sign-ins). Without either
    recorded there is nothing to compare, and nothing is said."""
    if not address and not browser:
        return False
    seen = select(SecurityEvent.id).where(
        SecurityEvent.user_id == user.id, SecurityEvent.kind == "signed_in", SecurityEvent.at < before
    )
    same_address = seen.where(SecurityEvent.address == address).limit(1) if address else None
    same_browser = seen.where(SecurityEvent.browser == browser).limit(1) if browser else None
    return not any(
        query is not None and db.session.execute(query).first() is not None for query in (same_address, same_browser)
    )


def is_four_eyes(reasons: list[str]) -> bool:
    return any(reason not in LOOK_CLOSELY_ONLY for reason in reasons)


def _add(case: Case, found: list[str]) -> bool:
    # Reasons are only ever added, and four eyes never taken back: when the
    # case as loaded has them all, so has the row, and there is nothing to
    # write (every opening of a case file with a failed pre-check comes here).
    if all(reason in (case.risk_reasons or []) for reason in found) and (case.high_risk or not is_four_eyes(found)):
        return False
    # The list is read, added to and written back whole, and the pre-checks may
    # be adding their own reason to it at this moment: read it under the lock.
    lock_row(Case, case.id)
    existing = list(case.risk_reasons or [])
    added = [reason for reason in found if reason not in existing]
    if added:
        case.risk_reasons = existing + added
    case.high_risk = bool(case.high_risk) or is_four_eyes(found)
    return bool(added)


def note_precheck_findings(case: Case) -> bool:
    """Add a reason for each failed pre-check on the case's newest documents
    (never removed: a case once high-risk stays so). True when one was added."""
    codes = current_reason_codes(case.id)
    return _add(case, [reason for code, reason in PRECHECK_FINDINGS.items() if code in codes])


def ensure_assessed(case: Case, now: datetime) -> bool:
    """Assess ``case`` once and keep the result on it; a True set by another
    check (with its own reason) is never turned back to False."""
    if case.risk_assessed_at is not None:
        return False
    _add(case, assess(case.user, case.created_at, case.opened_address, case.opened_browser))
    case.risk_assessed_at = now
    return True


def reason_label(code: str) -> str:
    label = REASON_LABELS.get(code)
    return str(label) if label is not None else code
