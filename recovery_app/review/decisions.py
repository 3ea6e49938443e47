"""Decisions: approve (the only code path that resets 2-step verification),
reject, ask for new documents, notes. Each first takes the case with a
conditional UPDATE, so a second click, a replayed form or a colleague deciding
at the same moment changes nothing."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from .. import audit, lifecycle
from ..auth import passkeys
from ..auth.events import record_event
from ..auth.sessions import bump_epoch, end_all_sessions
from ..case_labels import STATUS_LABELS
from ..database import lock_row, lock_rows
from ..extensions import db
from ..models import (
    Case,
    CaseNote,
    Decision,
    RecoveryCode,
    SentCode,
    TrustedDevice,
    TwoFactorMethod,
    User,
    UserSession,
)
from ..models.cases import REASON_CODES
from ..notify import queue_email
from . import risk
from .casefile import CHECKLIST, checklist_items
from .services import (
    HELD_STATUSES,
    ReviewError,
    _first_approver_id,
    _label,
    get_case,
)


def _why_not_decidable(case: Case, actor: User) -> ReviewError:
    if case.status in ("approved", "rejected"):
        return ReviewError(
            _l(
                "Case %(ref)s was already decided (%(status)s). Nothing was changed.",
                ref=case.reference,
                status=STATUS_LABELS[case.status],
            )
        )
    if case.status in lifecycle.CLOSED:
        return ReviewError(
            _l(
                "Case %(ref)s is closed (%(status)s). Nothing was changed.",
                ref=case.reference,
                status=STATUS_LABELS[case.status],
            )
        )
    if case.claimed_by_id is not None and case.claimed_by_id != actor.id:
        return ReviewError(
            _l(
                "Case %(ref)s is held by %(name)s: only they or a manager can decide it.",
                ref=case.reference,
                name=_label(case.claimed_by),
            )
        )
    if case.status == "awaiting_second_approval":
        return ReviewError(_l("Case %(ref)s is waiting for a second approval.", ref=case.reference))
    if case.status == "needs_info":
        return ReviewError(_l("Case %(ref)s is waiting for the seller's new documents.", ref=case.reference))
    return ReviewError(_l("Claim case %(ref)s before deciding it.", ref=case.reference))


def _decidable(case: Case, actor: User, statuses: tuple[str, ...]) -> list:
    """When ``actor`` may decide ``case``: it is in one of ``statuses`` and
    they hold it (any holder, for a manager)."""
    conditions = [Case.id == case.id, Case.status.in_(statuses)]
    if actor.role != "manager":
        conditions.append(Case.claimed_by_id == actor.id)
    return conditions


def _take_for_decision(case: Case, actor: User, statuses: tuple[str, ...], now: datetime) -> Case:
    """Lock the case in a decidable state held by ``actor`` (any holder for a
    manager), or refuse: the conditional UPDATE is the lock and the check."""
    conditions = _decidable(case, actor, statuses)
    taken = db.session.execute(update(Case).where(*conditions).values(last_activity_at=now)).rowcount
    db.session.refresh(case)
    if taken != 1:
        raise _why_not_decidable(case, actor)
    return case


def _lock_seller(user_id: int) -> None:
    """An approval resets the seller's second steps and ends their sessions:
    it locks the seller's row and their sessions' rows before the case's. The
    seller's own requests hold those first when they cancel the open case (a
    sign-in holds the user's row for its code counter; a signed-in owner's
    "this wasn't me" holds its session's row, whose last-seen time it has just
    written); taken the other way round, an approval and such a request at the
    same moment would wait on each other until PostgreSQL aborted one."""
    lock_row(User, user_id)
    lock_rows(UserSession, UserSession.user_id == user_id, UserSession.ended_at.is_(None))


def _take_for_approval(case: Case, actor: User, statuses: tuple[str, ...], now: datetime) -> Case:
    """``_take_for_decision`` for an approval: the seller first (``_lock_seller``)."""
    _lock_seller(case.user_id)
    return _take_for_decision(case, actor, statuses, now)


def _decision(
    case: Case, actor: User, action: str, now: datetime, *, reason_code: str | None = None, message: str | None = None
) -> Decision:
    decision = Decision(
        case_id=case.id, reviewer_id=actor.id, action=action, reason_code=reason_code, message=message, created_at=now
    )
    db.session.add(decision)
    return decision


def _tell_seller(case: Case, template: str, now: datetime, **context) -> None:
    user = case.user
    queue_email(
        user.email,
        f"review/email/{template}",
        user.locale,
        now,
        case={"reference": case.reference},
        user={"display_name": user.display_name, "email": user.email},
        base_url=current_app.config["RECOVERY_BASE_URL"],
        **context,
    )


def reset_second_factors(user: User, now: datetime) -> dict:
    """Remove every second factor of ``user`` and end all their sessions, so the
    next sign-in leads from the password straight to enrollment.

    Called only by an approval, inside its transaction: nothing else in the
    product resets 2-step verification. It takes the user's row lock first,
    like every change to a user's second steps, so a method the seller is
    adding at the same moment is either removed too or refused.
    """
    lock_row(User, user.id)
    removed = {
        "sent_codes": db.session.execute(delete(SentCode).where(SentCode.user_id == user.id)).rowcount,
        "methods": db.session.execute(delete(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id)).rowcount,
        "recovery_codes": db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)).rowcount,
        "trusted_devices": db.session.execute(delete(TrustedDevice).where(TrustedDevice.user_id == user.id)).rowcount,
        "passkeys": passkeys.remove_all(user),
    }
    user.must_enroll_2sv = True
    # The code lock counted failures of factors that no longer exist.
    user.failed_code_count = 0
    user.code_locked_until = None
    bump_epoch(user)
    removed["sessions"] = end_all_sessions(user, now, "recovery_approved")
    return removed


def _finish_approval(
    case: Case,
    actor: User,
    now: datetime,
    *,
    action: str,
    address: str | None,
    browser: str | None,
    checklist: list[str] | None = None,
) -> Case:
    user = case.user
    removed = reset_second_factors(user, now)
    details = {"reset": removed, "user_id": user.id}
    if checklist is not None:
        details["checklist"] = checklist
    # The decision's columns move with the status, so the reports' rollups see them.
    lifecycle.transition(
        case,
        "approved",
        now=now,
        actor=actor,
        action=action,
        details=details,
        address=address,
        browser=browser,
        values={"decision": "approved", "decided_by_id": actor.id},
    )
    _decision(case, actor, action, now)
    record_event(user, "recovery_approved", now, address=address, browser=browser, case=case.reference)
    _tell_seller(case, "approved", now)
    return case


def approve(
    reference: str,
    actor: User,
    checked: list[str],
    *,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> Case:
    """Approve a case held by ``actor``. A high-risk case waits for a second
    approver; otherwise 2SV is reset now, in this same transaction."""
    case = get_case(reference)
    items = _checklist_complete(case, actor, checked)
    case = _take_for_approval(case, actor, ("in_review",), now)
    risk.ensure_assessed(case, now)
    risk.note_precheck_findings(case)  # a check may have failed since the file was opened
    if case.high_risk:
        # The second approval must come from someone else: the case goes back to the queue for them.
        lifecycle.transition(
            case,
            "awaiting_second_approval",
            now=now,
            actor=actor,
            action="first_approval",
            details={"checklist": sorted(items), "risk_reasons": list(case.risk_reasons or [])},
            address=address,
            browser=browser,
            values={"claimed_by_id": None, "claimed_at": None},
        )
        _decision(case, actor, "first_approval", now)
        return case
    return _finish_approval(
        case, actor, now, action="approved", address=address, browser=browser, checklist=sorted(items)
    )


def _checklist_complete(case: Case, actor: User, checked: list[str]) -> dict:
    """The checklist items ``case`` asks for, once ``checked`` ticks them all.

    An incomplete checklist is the reviewer's to finish, on the form they sent:
    it is refused before anything is locked or written (not even the case's
    last activity), and the refusal names the checklist so the form marks it.
    Someone who may not decide the case at all is told that first, as for any
    decision, since ticking more boxes would not help them."""
    items = checklist_items(any(document.side == "selfie" for document in case.documents))
    if all(item in CHECKLIST for item in checked) and all(item in checked for item in items):
        return items
    if db.session.execute(select(Case.id).where(*_decidable(case, actor, ("in_review",)))).first() is None:
        db.session.refresh(case)
        raise _why_not_decidable(case, actor)
    raise ReviewError(_l("Tick every item of the checklist before approving."), field="checklist")


def confirm_approval(
    reference: str, actor: User, *, now: datetime, address: str | None = None, browser: str | None = None
) -> Case:
    """The second approval of a high-risk case, by a different reviewer or a manager.

    Who gave the first approval is read under the case's row lock: another tab
    of the same person may be giving it at this moment, and read before its
    commit, the case would still be in review and the check would pass."""
    case = get_case(reference)
    _lock_seller(case.user_id)
    lock_row(Case, case.id)
    if case.status == "awaiting_second_approval" and _first_approver_id(case) == actor.id:
        raise ReviewError(
            _l(
                "You gave the first approval of case %(ref)s: a different reviewer or a manager must confirm it.",
                ref=case.reference,
            )
        )
    case = _take_for_decision(case, actor, ("awaiting_second_approval",), now)
    return _finish_approval(case, actor, now, action="second_approval", address=address, browser=browser)


def reject(
    reference: str,
    actor: User,
    reason_code: str,
    message: str,
    *,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> Case:
    if reason_code not in REASON_CODES:
        raise ReviewError(_l("Choose one of the listed reasons."))
    message = (message or "").strip()
    if not message:
        raise ReviewError(_l("Write a message to the seller."))
    case = _take_for_decision(get_case(reference), actor, HELD_STATUSES, now)
    lifecycle.transition(
        case,
        "rejected",
        now=now,
        actor=actor,
        action="rejected",
        details={"reason_code": reason_code},
        address=address,
        browser=browser,
        values={"decision": "rejected", "reason_code": reason_code, "decided_by_id": actor.id},
    )
    case.message_to_seller = message
    _decision(case, actor, "rejected", now, reason_code=reason_code, message=message)
    _tell_seller(case, "rejected", now, reason_code=reason_code, message=message)
    return case


def request_documents(
    reference: str, actor: User, message: str, *, now: datetime, address: str | None = None, browser: str | None = None
) -> Case:
    """Ask the seller for new documents: the case waits on them and the SLA clock pauses."""
    message = (message or "").strip()
    if not message:
        raise ReviewError(_l("Write a message to the seller."))
    case = _take_for_decision(get_case(reference), actor, ("in_review",), now)
    lifecycle.transition(
        case, "needs_info", now=now, actor=actor, action="info_requested", address=address, browser=browser
    )
    case.info_request_message = message
    _decision(case, actor, "needs_info", now, message=message)
    _tell_seller(case, "needs_info", now, message=message)
    return case


def add_note(
    reference: str, author: User, body: str, *, now: datetime, address: str | None = None, browser: str | None = None
) -> CaseNote:
    body = (body or "").strip()
    if not body:
        raise ReviewError(_l("Write the note first."))
    case = get_case(reference)
    note = CaseNote(case_id=case.id, author_id=author.id, body=body, created_at=now)
    db.session.add(note)
    db.session.flush()
    audit.record(
        "case.note_added",
        now=now,
        actor=author,
        subject_type="case",
        subject_id=case.reference,
        details={"note_id": note.id},
        address=address,
        browser=browser,
    )
    return note


DECISION_LABELS = {
    "first_approval": _l("First approval"),
    "second_approval": _l("Second approval (approved)"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "needs_info": _l("Asked for new documents"),
}


def decision_label(action: str):
    return DECISION_LABELS.get(action, action)
