"""The case file a reviewer reads: the account and its security history, the
documents (served only to the holder or a manager, every view audited), the
notes, decisions and audit trail, and the pre-check panel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from .. import audit
from ..case_labels import CANCEL_REASONS
from ..documents import storage
from ..extensions import db
from ..models import (
    AuditEvent,
    Case,
    CaseNote,
    Decision,
    Document,
    Passkey,
    RecoveryCode,
    SecurityEvent,
    TrustedDevice,
    TwoFactorMethod,
    User,
)
from ..prechecks.services import Panel, checklist_suggestions
from ..prechecks.services import panel as precheck_panel
from . import risk
from .queue import SlaState, sla_state
from .services import HELD_STATUSES, CaseNotFound, _first_approver_id, get_case

EVENT_WINDOW = timedelta(days=30)
BURST_GAP = timedelta(minutes=15)
MAX_EVENTS = 300
TRAIL_LIMIT = 200

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
    "recovery_cancelled": _l("Recovery case cancelled by the account's owner"),
    "passkey_added": _l("Passkey added"),
    "passkey_removed": _l("Passkey removed"),
    "passkey_counter_backwards": _l("Passkey refused: its counter went backwards (possible copy)"),
}
# What each entry of a case's audit trail means, in words (the code stays beside it, small).
AUDIT_ACTION_LABELS = {
    "case.submitted": _l("Case opened by the seller"),
    "case.viewed": _l("Case file opened"),
    "document.viewed": _l("Document looked at"),
    "case.claimed": _l("Claimed"),
    "case.released": _l("Given back to the queue"),
    "case.claim_released_stale": _l("Given back to the queue after an hour without activity"),
    "case.reassigned": _l("Reassigned by a manager"),
    "case.note_added": _l("Internal note added"),
    "case.first_approval": _l("First of two approvals"),
    "case.second_approval_requested": _l("Second approval requested"),
    "case.second_approval": _l("Second approval: approved"),
    "case.approved": _l("Approved: 2SV reset"),
    "case.rejected": _l("Not approved"),
    "case.info_requested": _l("New documents asked for"),
    "case.resubmitted": _l("New documents sent by the seller"),
    "case.withdrawn": _l("Withdrawn by the seller"),
    "case.withdrawal_refused": _l("Withdrawal refused: a reviewer held the case"),
    "case.cancelled": _l("Cancelled by the account's owner"),
    "case.expired": _l("Closed: no new documents in time"),
    "case.sla_at_risk": _l("SLA at risk"),
    "case.sla_breached": _l("SLA breached: escalated"),
    "case.documents_purged": _l("Documents deleted (retention)"),
    "case.refused": _l("Action refused"),
    "precheck.document_reused": _l("Pre-check: document used in another case"),
}
METHOD_LABELS = {"totp": _l("Authenticator app"), "sms": _l("SMS"), "voice": _l("Voice call")}
SAFE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


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
class FirstApproval:
    reviewer: str
    at: datetime
    checklist: list[str]
    risk_reasons: list[str]


def _first_approval(trail: list[AuditEvent]) -> FirstApproval | None:
    event = next((event for event in trail if event.action == "case.first_approval"), None)
    if event is None:
        return None
    details = event.details or {}
    return FirstApproval(
        reviewer=event.actor_label or "?",
        at=event.at,
        checklist=list(details.get("checklist", [])),
        risk_reasons=list(details.get("risk_reasons", [])),
    )


def _stopped_because(trail: list[AuditEvent]) -> str | None:
    event = next((event for event in trail if event.action == "case.cancelled"), None)
    reason = (event.details or {}).get("reason") if event is not None else None
    return str(CANCEL_REASONS[reason]) if reason in CANCEL_REASONS else None


@dataclass
class CaseFile:
    case: Case
    user: User
    sla: SlaState
    methods: list[TwoFactorMethod]
    passkeys: int
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
    # For the second approver: who gave the first approval, when, what they ticked and why the case is high-risk.
    first_approval: FirstApproval | None = None
    suggestions: dict[str, bool] = field(default_factory=dict)
    # Why a cancelled case stopped, in words: the owner proved their second step.
    stopped_because: str | None = None


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
        if (
            last is not None
            and event.kind == "code_failed"
            and last.kind == "code_failed"
            and last.first_at - event.at <= BURST_GAP
        ):
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


def open_case_file(
    reference: str,
    viewer: User,
    *,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> CaseFile:
    """The case file as a reviewer opens it: the opening is audited and the
    case's risk is assessed the first time anyone looks."""
    return _open(get_case(reference), viewer, now=now, address=address, browser=browser, via=None)


def _open(
    case: Case, viewer: User, *, now: datetime, address: str | None, browser: str | None, via: str | None
) -> CaseFile:
    if risk.ensure_assessed(case, now) | risk.note_precheck_findings(case):
        db.session.flush()
    audit.record(
        "case.viewed",
        now=now,
        actor=viewer,
        subject_type="case",
        subject_id=case.reference,
        details={"via": via} if via else None,
        address=address,
        browser=browser,
    )
    return _gather(case, viewer, now)


def reread_case_file(
    reference: str,
    viewer: User,
    *,
    opened_since: datetime | None,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> CaseFile:
    """The case file again, under a form the reviewer sent from it and must
    correct. When they opened the file since ``opened_since`` (their session
    began), they are still looking at it: nothing is written, and the refused
    form leaves no trace. Otherwise the form was the first they saw of it (sent
    straight to the case's address), and showing it is an opening like any
    other, audited as one: no case file is shown without a trace."""
    case = get_case(reference)
    if opened_since is None or not _opened_by(case, viewer, opened_since):
        return _open(case, viewer, now=now, address=address, browser=browser, via="form_sent_back")
    return _gather(case, viewer, now)


def _opened_by(case: Case, viewer: User, since: datetime) -> bool:
    opened = audit.entries_about("case", case.reference).where(
        AuditEvent.action == "case.viewed", AuditEvent.actor_id == viewer.id, AuditEvent.at >= since
    )
    return db.session.execute(opened.limit(1)).first() is not None


def _gather(case: Case, viewer: User, now: datetime) -> CaseFile:
    """Everything a reviewer needs to decide, read once."""
    user = case.user
    methods = list(
        db.session.execute(
            select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id).order_by(TwoFactorMethod.id)
        ).scalars()
    )
    passkeys = db.session.execute(
        select(func.count()).select_from(Passkey).where(Passkey.user_id == user.id)
    ).scalar_one()
    unused_codes = db.session.execute(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).scalar_one()
    devices = db.session.execute(
        select(func.count())
        .select_from(TrustedDevice)
        .where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None), TrustedDevice.expires_at > now)
    ).scalar_one()
    since = min(now, case.created_at) - EVENT_WINDOW
    events = list(
        db.session.execute(
            select(SecurityEvent)
            .where(SecurityEvent.user_id == user.id, SecurityEvent.at >= since)
            .order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc())
            .limit(MAX_EVENTS)
        ).scalars()
    )
    earlier = list(
        db.session.execute(
            select(Case).where(Case.user_id == user.id, Case.id != case.id).order_by(Case.created_at.desc())
        ).scalars()
    )
    trail = list(
        db.session.execute(
            audit.entries_about("case", case.reference).order_by(AuditEvent.seq.desc()).limit(TRAIL_LIMIT)
        ).scalars()
    )
    has_selfie = any(document.side == "selfie" for document in case.documents)
    first_approver = _first_approver_id(case) if case.status == "awaiting_second_approval" else None
    held = case.claimed_by_id == viewer.id or viewer.role == "manager"
    return CaseFile(
        case=case,
        user=user,
        sla=sla_state(case, now),
        methods=methods,
        passkeys=passkeys,
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
        first_approval=_first_approval(trail) if case.status == "awaiting_second_approval" else None,
        stopped_because=_stopped_because(trail) if case.status == "cancelled" else None,
    )


def read_document(
    reference: str,
    document_id: int,
    viewer: User,
    *,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> tuple[Document, bytes, str]:
    """The decrypted bytes of one document, for the holder of the claim or a
    manager; anyone else (and any document not on this case) is not found.
    Every read is an audit event (never the content)."""
    case = get_case(reference)
    document = db.session.execute(
        select(Document).where(Document.id == document_id, Document.case_id == case.id)
    ).scalar_one_or_none()
    if document is None or document.purged_at is not None or not may_see_documents(case, viewer):
        raise CaseNotFound(reference)
    content = storage.read(document)
    extension = SAFE_TYPES.get(document.content_type, "bin")
    audit.record(
        "document.viewed",
        now=now,
        actor=viewer,
        subject_type="case",
        subject_id=case.reference,
        details={"document_id": document.id, "side": document.side, "round": document.round, "sha256": document.sha256},
        address=address,
        browser=browser,
    )
    return document, content, f"{case.reference}-{document.side}-{document.round}.{extension}"


# --- decisions -------------------------------------------------------------------


def audit_action_label(action: str):
    return AUDIT_ACTION_LABELS.get(action, action)


def method_label(kind: str):
    return METHOD_LABELS.get(kind, kind)
