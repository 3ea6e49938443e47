"""The reviewers' rules: the queue, claims, the case file, decisions, and the
one code path that resets a seller's 2-step verification (an approval).

Claims are atomic conditional UPDATEs: the row changes only if it is still in
the state the reviewer saw, so two reviewers can never hold one case. "Claim
next" picks its row with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (on SQLite
the same statement is one write under the database lock). Decisions first take
the case with the same kind of conditional UPDATE, so a second click, a replayed
form or a colleague deciding at the same moment changes nothing.

Services only flush: the request that calls them commits once at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, delete, func, select, union_all, update
from sqlalchemy.orm import aliased

from ..case_labels import REJECTION_REASON_LABELS, STATUS_LABELS
from .. import audit, lifecycle
from ..auth.sessions import bump_epoch, end_all_sessions
from ..documents import storage
from ..domain import DomainError
from ..auth.events import record_event
from ..extensions import db
from ..models import (
    AuditEvent,
    AuditHead,
    Case,
    CaseNote,
    Decision,
    Document,
    RecoveryCode,
    SecurityEvent,
    SentCode,
    TrustedDevice,
    TwoFactorMethod,
    User,
)
from ..models.base import UTCDateTime
from ..models.cases import CLOCK_RUNNING_STATUSES, REASON_CODES
from ..models.users import STAFF_ROLES
from ..notify import queue_email
from ..prechecks.services import Panel, checklist_suggestions, failed_filter, flagged_filter
from ..prechecks.services import panel as precheck_panel
from . import risk

PAGE_SIZE = 50
# The queue shows, by default, the cases that wait on us.
WAITING_ON_US = ("submitted", "in_review", "awaiting_second_approval")
QUEUE_STATUSES = WAITING_ON_US + ("needs_info",)
# Statuses in which a case can be held by someone.
HELD_STATUSES = ("in_review", "awaiting_second_approval")
EVENT_WINDOW = timedelta(days=30)
BURST_GAP = timedelta(minutes=15)
MAX_EVENTS = 300
TRAIL_LIMIT = 200

REASON_LABELS = REJECTION_REASON_LABELS
CHECKLIST = {
    "type_matches": _l("Document type matches the one chosen"),
    "not_expired": _l("Document is not expired"),
    "name_matches": _l("Name matches the user"),
    "photo_clear": _l("Photo is clear and readable"),
    "selfie_matches": _l("Selfie matches the document"),
}
# Every kind of security event a user can have (auth.events.KINDS, and the
# recovery intake's own), so the reviewer never reads a raw code.
EVENT_LABELS = {
    "password_changed": _l("Password changed"),
    "email_changed": _l("E-mail address changed"),
    "method_added": _l("2SV method added"),
    "method_removed": _l("2SV method removed"),
    "code_failed": _l("Wrong 2SV code"),
    "signed_in": _l("Signed in"),
    "recovery_approved": _l("2SV reset by an approved recovery case"),
    "signed_out": _l("Signed out"),
    "password_failed": _l("Wrong password"),
    "code_locked": _l("Codes paused after too many wrong tries"),
    "hard_locked": _l("Sign-in locked after too many failures"),
    "unlocked": _l("Sign-in unlocked"),
    "enrolled": _l("2-step verification set up"),
    "method_primary_changed": _l("Main 2SV method changed"),
    "recovery_codes_generated": _l("New recovery codes made"),
    "recovery_code_used": _l("Recovery code used"),
    "trusted_device_added": _l("Trusted device added"),
    "trusted_device_revoked": _l("Trusted device removed"),
    "twofactor_disabled": _l("2SV turned off"),
    "password_reset_requested": _l("Password reset requested"),
    "sessions_ended": _l("Sessions ended"),
    "invited": _l("Invited"),
    "user_removed": _l("User removed"),
    "recovery_requested": _l("Recovery case opened"),
    "recovery_rejected": _l("Recovery case rejected"),
    "recovery_withdrawn": _l("Recovery case withdrawn"),
}
METHOD_LABELS = {"totp": _l("Authenticator app"), "sms": _l("SMS"), "voice": _l("Voice call")}
SAFE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


class ReviewError(DomainError):
    """A review action that cannot happen; ``message`` says why, in the viewer's language."""


class CaseNotFound(LookupError):
    """No such case, or no such document on it, or not one this viewer may see."""


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _label(user: User | None) -> str | None:
    if user is None:
        return None
    return user.display_name or user.email


def get_case(reference: str) -> Case:
    case = db.session.execute(select(Case).where(Case.reference == (reference or "")[:20])).scalar_one_or_none()
    if case is None:
        raise CaseNotFound(reference)
    return case


# --- SLA display -----------------------------------------------------------------

@dataclass
class SlaState:
    left: timedelta  # negative: overdue
    paused: bool
    at_risk: bool
    breached: bool


def sla_state(case: Case, now: datetime) -> SlaState:
    if case.status == "needs_info" and case.paused_since is not None:
        left = case.due_at - case.paused_since
        return SlaState(left, True, False, left < timedelta(0))
    if case.status not in CLOCK_RUNNING_STATUSES:
        end = case.decided_at or case.closed_at or now
        left = case.due_at - end
        return SlaState(left, False, False, left < timedelta(0))
    left = case.due_at - now
    breached = left <= timedelta(0)
    return SlaState(left, False, not breached and left <= lifecycle.at_risk_margin(), breached)


# --- the queue -------------------------------------------------------------------

@dataclass
class QueueFilters:
    status: str = ""
    at_risk: bool = False
    breached: bool = False
    mine: bool = False
    flagged: bool = False  # a pre-check said "look closely" or "fail", or could not run
    after: tuple[datetime, int] | None = None

    def args(self) -> dict:
        """Query-string arguments that reproduce these filters (no cursor)."""
        args: dict = {}
        if self.status:
            args["status"] = self.status
        for name in ("at_risk", "breached", "mine", "flagged"):
            if getattr(self, name):
                args[name] = "1"
        return args


@dataclass
class QueueRow:
    case: Case
    holder: str | None
    sla: SlaState
    precheck_failed: bool = False


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    first_page: bool


def encode_cursor(due_at: datetime, case_id: int) -> str:
    return f"{_utc(due_at):%Y%m%dT%H%M%S.%f}Z.{case_id}"


def decode_cursor(text: str) -> tuple[datetime, int]:
    try:
        stamp, case_id = text.rsplit(".", 1)
        moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
        number = int(case_id)
    except (ValueError, AttributeError):
        raise ReviewError(_l("That page link is not valid. Showing the first page.")) from None
    if number < 1 or len(text) > 60:
        raise ReviewError(_l("That page link is not valid. Showing the first page."))
    return moment, number


def queue_page(viewer: User, filters: QueueFilters, now: datetime) -> QueuePage:
    """One page of the queue, most urgent first, in one statement.

    Each status is read by its own range scan of the (status, due_at) index,
    at most a page long, and the short lists are merged: the cost is the page
    size whatever the number of open cases (keyset pagination, no OFFSET).
    The pre-check filter and each row's failed-check badge are correlated
    EXISTS probes of the pre-check tables' case_id indexes, inside that same
    statement: no query per row.
    """
    statuses = (filters.status,) if filters.status else WAITING_ON_US
    if filters.mine:
        statuses = tuple(status for status in statuses if status in HELD_STATUSES)
    if filters.at_risk or filters.breached:
        statuses = tuple(status for status in statuses if status in CLOCK_RUNNING_STATUSES)
    if not statuses:
        return QueuePage([], None, filters.after is None)
    conditions = []
    if filters.mine:
        conditions.append(Case.claimed_by_id == viewer.id)
    if filters.breached and filters.at_risk:
        conditions.append(Case.due_at < now + lifecycle.at_risk_margin())
    elif filters.breached:
        conditions.append(Case.due_at <= now)
    elif filters.at_risk:
        conditions.extend([Case.due_at > now, Case.due_at <= now + lifecycle.at_risk_margin()])
    if filters.flagged:
        conditions.append(flagged_filter())
    if filters.after is not None:
        due, case_id = filters.after
        conditions.extend([Case.due_at >= due, (Case.due_at > due) | (Case.id > case_id)])
    parts = [
        select(
            select(Case.id, Case.due_at)
            .where(Case.status == status, *conditions)
            .order_by(Case.due_at, Case.id)
            .limit(PAGE_SIZE + 1)
            .subquery()
        )
        for status in statuses
    ]
    picked = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    holder = aliased(User)
    rows = db.session.execute(
        select(Case, holder.display_name, holder.email, failed_filter().label("precheck_failed"))
        .join(picked, picked.c.id == Case.id)
        .outerjoin(holder, holder.id == Case.claimed_by_id)
        .order_by(Case.due_at, Case.id)
        .limit(PAGE_SIZE + 1)
    ).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = encode_cursor(rows[-1][0].due_at, rows[-1][0].id) if more else None
    return QueuePage(
        [QueueRow(case, (name or email) if email else None, sla_state(case, now), bool(failed))
         for case, name, email, failed in rows],
        next_cursor,
        filters.after is None,
    )


# --- claims ----------------------------------------------------------------------

def _first_approver_id(case: Case) -> int | None:
    return db.session.execute(
        select(Decision.reviewer_id)
        .where(Decision.case_id == case.id, Decision.action == "first_approval")
        .order_by(Decision.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _claim_values(reviewer: User, now: datetime) -> dict:
    moment = bindparam(None, now, type_=UTCDateTime())
    return {
        "claimed_by_id": reviewer.id,
        "claimed_at": now,
        "last_activity_at": now,
        "first_claimed_at": func.coalesce(Case.first_claimed_at, moment),
    }


def _not_claimable(case: Case, viewer: User) -> ReviewError:
    if case.claimed_by_id == viewer.id:
        return ReviewError(_l("You already hold case %(ref)s.", ref=case.reference))
    if case.claimed_by_id is not None:
        return ReviewError(_l("Case %(ref)s is already held by %(name)s.", ref=case.reference,
                              name=_label(case.claimed_by)))
    if case.status in lifecycle.CLOSED:
        return ReviewError(_l("Case %(ref)s is closed (%(status)s): there is nothing left to review.",
                              ref=case.reference, status=STATUS_LABELS[case.status]))
    if case.status == "needs_info":
        return ReviewError(_l("Case %(ref)s is waiting for the seller's new documents.", ref=case.reference))
    return ReviewError(_l("Case %(ref)s cannot be claimed now.", ref=case.reference))


def _after_claim(case: Case, reviewer: User, now: datetime) -> Case:
    db.session.refresh(case)
    risk.ensure_assessed(case, now)
    return case


def claim(reference: str, reviewer: User, *, now: datetime, address: str | None = None,
          browser: str | None = None) -> Case:
    """Take one case. Exactly one of several reviewers pressing at once gets it;
    the others are told who has it."""
    case = get_case(reference)
    if case.status == "awaiting_second_approval":
        if _first_approver_id(case) == reviewer.id:
            raise ReviewError(_l("You gave the first approval of case %(ref)s: a different reviewer or a manager "
                                 "must confirm it.", ref=case.reference))
        # The status stays: only the holder changes, if nobody holds it.
        taken = db.session.execute(
            update(Case)
            .where(Case.id == case.id, Case.status == "awaiting_second_approval", Case.claimed_by_id.is_(None))
            .values(**_claim_values(reviewer, now))
        ).rowcount
        db.session.refresh(case)
        if taken != 1:
            raise _not_claimable(case, reviewer)
        audit.record("case.claimed", now=now, actor=reviewer, subject_type="case", subject_id=case.reference,
                     details={"from": case.status, "to": case.status}, address=address, browser=browser)
        return _after_claim(case, reviewer, now)
    try:
        lifecycle.transition(case, "in_review", now=now, actor=reviewer, action="claimed", address=address,
                             browser=browser, values=_claim_values(reviewer, now),
                             where=(Case.claimed_by_id.is_(None),))
    except lifecycle.TransitionError:
        raise _not_claimable(case, reviewer) from None
    return _after_claim(case, reviewer, now)


def claim_next(reviewer: User, *, now: datetime, address: str | None = None, browser: str | None = None) -> Case | None:
    """Take the most urgent unclaimed case, or None when there is none.

    PostgreSQL: the candidate row is locked with SKIP LOCKED, so concurrent
    reviewers each get a different case instead of queueing behind one row.
    SQLite: the whole statement runs under the database write lock.
    """
    candidate = (
        select(Case.id)
        .where(Case.status == "submitted", Case.claimed_by_id.is_(None))
        .order_by(Case.due_at, Case.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    moved = lifecycle.transition_where("submitted", "in_review", Case.id == candidate, Case.claimed_by_id.is_(None),
                                       now=now, actor=reviewer, action="claimed", details={"next": True},
                                       values=_claim_values(reviewer, now), address=address, browser=browser)
    if not moved:
        return None
    return _after_claim(db.session.get(Case, moved[0][0]), reviewer, now)


def release(reference: str, reviewer: User, *, now: datetime, address: str | None = None,
            browser: str | None = None) -> Case:
    """Give a held case back to the queue (a second approval keeps its status)."""
    case = get_case(reference)
    refused = ReviewError(_l("You do not hold case %(ref)s, so there is nothing to release.", ref=case.reference))
    if case.status == "in_review":
        try:
            lifecycle.transition(case, "submitted", now=now, actor=reviewer, action="released", address=address,
                                 browser=browser, values={"last_activity_at": now},
                                 where=(Case.claimed_by_id == reviewer.id,))
        except lifecycle.TransitionError:
            raise refused from None
        return case
    released = db.session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == "awaiting_second_approval", Case.claimed_by_id == reviewer.id)
        .values(claimed_by_id=None, claimed_at=None, last_activity_at=now)
    ).rowcount
    db.session.refresh(case)
    if released != 1:
        raise refused
    audit.record("case.released", now=now, actor=reviewer, subject_type="case", subject_id=case.reference,
                 details={"to": case.status}, address=address, browser=browser)
    return case


def record_refusal(reference: str, actor: User, action: str, error: ReviewError, *, now: datetime,
                   address: str | None = None, browser: str | None = None) -> None:
    """Audit a staff action that was refused (ASVS 16.3.2): who tried what, and why not."""
    audit.record("case.refused", now=now, actor=actor, subject_type="case", subject_id=reference,
                 details={"action": action, "reason": str(error.message)}, address=address, browser=browser)


def staff_choices() -> list[tuple[int, str]]:
    """(id, label) of every active reviewer and manager, for the reassign form."""
    users = db.session.execute(
        select(User)
        .where(User.role.in_(STAFF_ROLES), User.disabled_at.is_(None))
        .order_by(User.display_name, User.email)
    ).scalars()
    return [(user.id, f"{user.display_name or user.email} ({user.email})") for user in users]


def reassign(reference: str, manager: User, to_user_id: int, *, now: datetime, address: str | None = None,
             browser: str | None = None) -> Case:
    """A manager gives a case to another reviewer (or takes it)."""
    case = get_case(reference)
    target = db.session.get(User, to_user_id)
    if target is None or target.role not in STAFF_ROLES or target.disabled_at is not None:
        raise ReviewError(_l("Choose an active reviewer or manager."))
    if case.status == "awaiting_second_approval" and _first_approver_id(case) == target.id:
        raise ReviewError(_l("%(name)s gave the first approval; the second approval must come from someone else.",
                             name=_label(target)))
    previous = case.claimed_by_id
    details = {"from_holder": previous, "to_holder": target.id}
    changed = ReviewError(_l("Case %(ref)s changed while you were looking at it. Please check it again.",
                             ref=case.reference))
    if case.status == "submitted":
        try:
            lifecycle.transition(case, "in_review", now=now, actor=manager, action="reassigned", details=details,
                                 address=address, browser=browser, values=_claim_values(target, now),
                                 where=(Case.claimed_by_id.is_(None),))
        except lifecycle.TransitionError:
            raise changed from None
        return _after_claim(case, manager, now)
    if case.status not in HELD_STATUSES:
        raise _not_claimable(case, manager) if case.status != "needs_info" else ReviewError(
            _l("Case %(ref)s is waiting for the seller's new documents.", ref=case.reference))
    # A held case keeps its status: only the holder changes, if it is still the one the manager saw.
    holder = Case.claimed_by_id.is_(None) if previous is None else Case.claimed_by_id == previous
    moved = db.session.execute(
        update(Case).where(Case.id == case.id, Case.status == case.status, holder)
        .values(**_claim_values(target, now))).rowcount
    if moved != 1:
        raise changed
    audit.record("case.reassigned", now=now, actor=manager, subject_type="case", subject_id=case.reference,
                 details={"from": case.status, "to": case.status, **details}, address=address, browser=browser)
    return _after_claim(case, manager, now)


# --- the case file ---------------------------------------------------------------

@dataclass
class EventGroup:
    kind: str
    label: str
    count: int
    first_at: datetime
    last_at: datetime
    addresses: list[str] = field(default_factory=list)
    browsers: list[str] = field(default_factory=list)


@dataclass
class CaseFile:
    case: Case
    user: User
    sla: SlaState
    methods: list[TwoFactorMethod]
    unused_recovery_codes: int
    trusted_devices: int
    events: list[EventGroup]
    earlier_cases: list[Case]
    documents: list[Document]
    notes: list[CaseNote]
    decisions: list[Decision]
    trail: list[AuditEvent]
    first_approver_id: int | None
    may_see_documents: bool
    may_decide: bool
    may_confirm: bool
    checklist: dict
    has_selfie: bool
    # What the pre-checks found (the panel beside the documents), and what they
    # suggest per checklist item (True: nothing wrong found, False: look
    # closely; absent: they cannot say). Never ticks a box.
    prechecks: Panel | None = None
    suggestions: dict[str, bool] = field(default_factory=dict)


def may_see_documents(case: Case, viewer: User) -> bool:
    """Documents: the reviewer holding the claim, or a manager."""
    if viewer.role == "manager":
        return True
    return viewer.role == "reviewer" and case.claimed_by_id == viewer.id and case.status in HELD_STATUSES


def group_events(events: list[SecurityEvent]) -> list[EventGroup]:
    """Newest first; a run of failed codes close together becomes one burst."""
    groups: list[EventGroup] = []
    for event in events:
        last = groups[-1] if groups else None
        if (last is not None and event.kind == "code_failed" and last.kind == "code_failed"
                and last.first_at - event.at <= BURST_GAP):
            last.count += 1
            last.first_at = event.at
        else:
            last = EventGroup(event.kind, str(EVENT_LABELS.get(event.kind, event.kind)), 1, event.at, event.at)
            groups.append(last)
        if event.address and event.address not in last.addresses:
            last.addresses.append(event.address)
        if event.browser and event.browser not in last.browsers:
            last.browsers.append(event.browser)
    return groups


def checklist_items(has_selfie: bool) -> dict:
    return {key: label for key, label in CHECKLIST.items() if has_selfie or key != "selfie_matches"}


def open_case_file(reference: str, viewer: User, *, now: datetime, address: str | None = None,
                   browser: str | None = None) -> CaseFile:
    """Everything a reviewer needs to decide, gathered once; the view is audited
    and the case's risk is assessed the first time anyone looks."""
    case = get_case(reference)
    if risk.ensure_assessed(case, now):
        db.session.flush()
    audit.record("case.viewed", now=now, actor=viewer, subject_type="case", subject_id=case.reference,
                 address=address, browser=browser)
    user = case.user
    methods = list(db.session.execute(
        select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id).order_by(TwoFactorMethod.id)).scalars())
    unused_codes = db.session.execute(
        select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                              RecoveryCode.used_at.is_(None))).scalar_one()
    devices = db.session.execute(
        select(func.count()).select_from(TrustedDevice).where(
            TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None), TrustedDevice.expires_at > now)
    ).scalar_one()
    since = min(now, case.created_at) - EVENT_WINDOW
    events = list(db.session.execute(
        select(SecurityEvent).where(SecurityEvent.user_id == user.id, SecurityEvent.at >= since)
        .order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc()).limit(MAX_EVENTS)).scalars())
    earlier = list(db.session.execute(
        select(Case).where(Case.user_id == user.id, Case.id != case.id).order_by(Case.created_at.desc())).scalars())
    trail = list(db.session.execute(
        select(AuditEvent).where(AuditEvent.subject_type == "case", AuditEvent.subject_id == case.reference)
        .order_by(AuditEvent.seq.desc()).limit(TRAIL_LIMIT)).scalars())
    has_selfie = any(document.side == "selfie" for document in case.documents)
    first_approver = _first_approver_id(case) if case.status == "awaiting_second_approval" else None
    held = case.claimed_by_id == viewer.id or viewer.role == "manager"
    return CaseFile(
        case=case,
        user=user,
        sla=sla_state(case, now),
        methods=methods,
        unused_recovery_codes=unused_codes,
        trusted_devices=devices,
        events=group_events(events),
        earlier_cases=earlier,
        documents=list(case.documents),
        notes=list(case.notes),
        decisions=list(case.decisions),
        trail=trail,
        first_approver_id=first_approver,
        may_see_documents=may_see_documents(case, viewer),
        may_decide=held and case.status == "in_review",
        may_confirm=held and case.status == "awaiting_second_approval" and first_approver != viewer.id,
        checklist=checklist_items(has_selfie),
        has_selfie=has_selfie,
        prechecks=precheck_panel(case),
        suggestions=checklist_suggestions(case),
    )


def read_document(reference: str, document_id: int, viewer: User, *, now: datetime, address: str | None = None,
                  browser: str | None = None) -> tuple[Document, bytes, str]:
    """The decrypted bytes of one document, for the holder of the claim or a
    manager; anyone else (and any document not on this case) is not found.
    Every read is an audit event (never the content)."""
    case = get_case(reference)
    document = db.session.execute(
        select(Document).where(Document.id == document_id, Document.case_id == case.id)).scalar_one_or_none()
    if document is None or document.purged_at is not None or not may_see_documents(case, viewer):
        raise CaseNotFound(reference)
    content = storage.read(document)
    extension = SAFE_TYPES.get(document.content_type, "bin")
    audit.record("document.viewed", now=now, actor=viewer, subject_type="case", subject_id=case.reference,
                 details={"document_id": document.id, "side": document.side, "round": document.round,
                          "sha256": document.sha256}, address=address, browser=browser)
    return document, content, f"{case.reference}-{document.side}-{document.round}.{extension}"


# --- decisions -------------------------------------------------------------------

def _why_not_decidable(case: Case, actor: User) -> ReviewError:
    if case.status in ("approved", "rejected"):
        return ReviewError(_l("Case %(ref)s was already decided (%(status)s). Nothing was changed.",
                              ref=case.reference, status=STATUS_LABELS[case.status]))
    if case.status in lifecycle.CLOSED:
        return ReviewError(_l("Case %(ref)s is closed (%(status)s). Nothing was changed.",
                              ref=case.reference, status=STATUS_LABELS[case.status]))
    if case.claimed_by_id is not None and case.claimed_by_id != actor.id:
        return ReviewError(_l("Case %(ref)s is held by %(name)s: only they or a manager can decide it.",
                              ref=case.reference, name=_label(case.claimed_by)))
    if case.status == "awaiting_second_approval":
        return ReviewError(_l("Case %(ref)s is waiting for a second approval.", ref=case.reference))
    if case.status == "needs_info":
        return ReviewError(_l("Case %(ref)s is waiting for the seller's new documents.", ref=case.reference))
    return ReviewError(_l("Claim case %(ref)s before deciding it.", ref=case.reference))


def _take_for_decision(reference: str, actor: User, statuses: tuple[str, ...], now: datetime) -> Case:
    """Lock the case in a decidable state held by ``actor`` (any holder for a
    manager), or refuse: the conditional UPDATE is the lock and the check."""
    case = get_case(reference)
    conditions = [Case.id == case.id, Case.status.in_(statuses)]
    if actor.role != "manager":
        conditions.append(Case.claimed_by_id == actor.id)
    taken = db.session.execute(update(Case).where(*conditions).values(last_activity_at=now)).rowcount
    db.session.refresh(case)
    if taken != 1:
        raise _why_not_decidable(case, actor)
    return case


def _decision(case: Case, actor: User, action: str, now: datetime, *, reason_code: str | None = None,
              message: str | None = None) -> Decision:
    decision = Decision(case_id=case.id, reviewer_id=actor.id, action=action, reason_code=reason_code,
                        message=message, created_at=now)
    db.session.add(decision)
    return decision


def _tell_seller(case: Case, template: str, now: datetime, **context) -> None:
    user = case.user
    queue_email(user.email, f"review/email/{template}", user.locale, now, case=case, user=user,
                base_url=current_app.config["RECOVERY_BASE_URL"], **context)


def reset_second_factors(user: User, now: datetime) -> dict:
    """Remove every second factor of ``user`` and end all their sessions, so the
    next sign-in leads from the password straight to enrollment.

    Called only by an approval, inside its transaction: nothing else in the
    product resets 2-step verification.
    """
    removed = {
        "sent_codes": db.session.execute(delete(SentCode).where(SentCode.user_id == user.id)).rowcount,
        "methods": db.session.execute(delete(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id)).rowcount,
        "recovery_codes": db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)).rowcount,
        "trusted_devices": db.session.execute(delete(TrustedDevice).where(TrustedDevice.user_id == user.id)).rowcount,
    }
    user.must_enroll_2sv = True
    # The code lock counted failures of factors that no longer exist.
    user.failed_code_count = 0
    user.code_locked_until = None
    bump_epoch(user)
    removed["sessions"] = end_all_sessions(user, now, "recovery_approved")
    return removed


def _finish_approval(case: Case, actor: User, now: datetime, *, action: str, address: str | None,
                     browser: str | None, checklist: list[str] | None = None) -> Case:
    user = case.user
    removed = reset_second_factors(user, now)
    details = {"reset": removed, "user_id": user.id}
    if checklist is not None:
        details["checklist"] = checklist
    # The decision's columns move with the status, so the reports' rollups see them.
    lifecycle.transition(case, "approved", now=now, actor=actor, action=action, details=details,
                         address=address, browser=browser, values={"decision": "approved", "decided_by_id": actor.id})
    _decision(case, actor, action, now)
    record_event(user, "recovery_approved", now, address=address, browser=browser, case=case.reference)
    _tell_seller(case, "approved", now)
    return case


def approve(reference: str, actor: User, checked: list[str], *, now: datetime, address: str | None = None,
            browser: str | None = None) -> Case:
    """Approve a case held by ``actor``. A high-risk case waits for a second
    approver; otherwise 2SV is reset now, in this same transaction."""
    case = _take_for_decision(reference, actor, ("in_review",), now)
    items = checklist_items(any(document.side == "selfie" for document in case.documents))
    unknown = [item for item in checked if item not in CHECKLIST]
    if unknown or any(item not in checked for item in items):
        raise ReviewError(_l("Tick every item of the checklist before approving."))
    risk.ensure_assessed(case, now)
    if case.high_risk:
        # The second approval must come from someone else: the case goes back to the queue for them.
        lifecycle.transition(case, "awaiting_second_approval", now=now, actor=actor, action="first_approval",
                             details={"checklist": sorted(items), "risk_reasons": list(case.risk_reasons or [])},
                             address=address, browser=browser, values={"claimed_by_id": None, "claimed_at": None})
        _decision(case, actor, "first_approval", now)
        return case
    return _finish_approval(case, actor, now, action="approved", address=address, browser=browser,
                            checklist=sorted(items))


def confirm_approval(reference: str, actor: User, *, now: datetime, address: str | None = None,
                     browser: str | None = None) -> Case:
    """The second approval of a high-risk case, by a different reviewer or a manager."""
    case = get_case(reference)
    if case.status == "awaiting_second_approval" and _first_approver_id(case) == actor.id:
        raise ReviewError(_l("You gave the first approval of case %(ref)s: a different reviewer or a manager "
                             "must confirm it.", ref=case.reference))
    case = _take_for_decision(reference, actor, ("awaiting_second_approval",), now)
    return _finish_approval(case, actor, now, action="second_approval", address=address, browser=browser)


def reject(reference: str, actor: User, reason_code: str, message: str, *, now: datetime,
           address: str | None = None, browser: str | None = None) -> Case:
    if reason_code not in REASON_CODES:
        raise ReviewError(_l("Choose one of the listed reasons."))
    message = (message or "").strip()
    if not message:
        raise ReviewError(_l("Write a message to the seller."))
    case = _take_for_decision(reference, actor, HELD_STATUSES, now)
    lifecycle.transition(case, "rejected", now=now, actor=actor, action="rejected",
                         details={"reason_code": reason_code}, address=address, browser=browser,
                         values={"decision": "rejected", "reason_code": reason_code, "decided_by_id": actor.id})
    case.message_to_seller = message
    _decision(case, actor, "rejected", now, reason_code=reason_code, message=message)
    _tell_seller(case, "rejected", now, reason=REASON_LABELS[reason_code], message=message)
    return case


def request_documents(reference: str, actor: User, message: str, *, now: datetime, address: str | None = None,
                      browser: str | None = None) -> Case:
    """Ask the seller for new documents: the case waits on them and the SLA clock pauses."""
    message = (message or "").strip()
    if not message:
        raise ReviewError(_l("Write a message to the seller."))
    case = _take_for_decision(reference, actor, ("in_review",), now)
    lifecycle.transition(case, "needs_info", now=now, actor=actor, action="info_requested",
                         address=address, browser=browser)
    case.info_request_message = message
    _decision(case, actor, "needs_info", now, message=message)
    _tell_seller(case, "needs_info", now, message=message)
    return case


def add_note(reference: str, author: User, body: str, *, now: datetime, address: str | None = None,
             browser: str | None = None) -> CaseNote:
    body = (body or "").strip()
    if not body:
        raise ReviewError(_l("Write the note first."))
    case = get_case(reference)
    note = CaseNote(case_id=case.id, author_id=author.id, body=body, created_at=now)
    db.session.add(note)
    db.session.flush()
    audit.record("case.note_added", now=now, actor=author, subject_type="case", subject_id=case.reference,
                 details={"note_id": note.id}, address=address, browser=browser)
    return note


DECISION_LABELS = {
    "first_approval": _l("First approval"),
    "second_approval": _l("Second approval (approved)"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "needs_info": _l("Asked for new documents"),
}


def method_label(kind: str):
    return METHOD_LABELS.get(kind, kind)


def decision_label(action: str):
    return DECISION_LABELS.get(action, action)
