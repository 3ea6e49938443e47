"""The seller's side of a recovery case: opening it with identity documents,
sending new documents when a reviewer asks, withdrawing it, and the owner
who still has a working second step cancelling it.

Rules take plain values and ``now``. A case and its documents appear together
or not at all: files are cleaned and staged first (slow, before the unit takes
the write lock), the rows are written, the request commits once at its edge,
and only then are the staged files moved into place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select

from .. import audit, lifecycle, notify
from ..auth.events import record_event
from ..case_labels import CANCEL_REASONS, DOCUMENT_TYPE_LABELS, SIDE_LABELS
from ..database import begin_write, lock_row, on_commit, on_rollback
from ..documents import pipeline, storage
from ..domain import DomainError
from ..extensions import db
from ..i18n import zoned
from ..models import AuditEvent, Case, Document, User
from ..models.cases import OPEN_STATUSES
from ..web import describe_browser

SIDES = ("front", "back", "selfie")
SIDE_HINTS = {
    "front": _l("The side with your photo and name. All four corners visible, no glare, text readable."),
    "back": _l("The other side of the card, including any notes written on it (such as a new address)."),
    "selfie": _l(
        "A photo of your face with the document held next to it. Both your face and the photo on "
        "the document must be clearly visible."
    ),
}
PASSPORT_FRONT_HINT = _l("The page with your photo, name and date of birth. The whole page visible, no glare.")
WITHDRAWABLE = ("submitted", "needs_info")
NOTHING_TO_WITHDRAW = _l("You have no open recovery case to withdraw.")


class RecoveryError(DomainError):
    """A rule stopped the request; ``message`` is for the seller."""


# The key of a resubmission with no new photo at all: the form as a whole is
# wrong, not one of its fields (which side is wanted is in the reviewer's message).
NO_NEW_PHOTO = "documents"


class UploadProblems(RecoveryError):
    """One or more fields of the form are wrong: ``problems`` maps a field name to its message."""

    def __init__(self, problems: dict[str, object], passed: list[_Cleaned] | tuple = ()):
        if set(problems) == {NO_NEW_PHOTO}:  # no field to mark: the message says it all
            super().__init__(problems[NO_NEW_PHOTO])
        else:
            super().__init__(_l("Nothing was sent. Please correct the fields marked below and try again."))
        self.problems = problems
        self.passed = list(passed)  # the files that were fine, for the caller to keep for the next try


class OpenCaseExists(RecoveryError):
    def __init__(self, case: Case):
        super().__init__(_l("You already have an open recovery case. Here is where it stands."))
        self.case = case


@dataclass
class Upload:
    """What the browser sent in one file field (plain values: no request objects)."""

    side: str
    filename: str | None
    data: bytes
    extra_files: int = 0  # more than one file in the same field

    @property
    def present(self) -> bool:
        return bool(self.filename) or bool(self.data)


@dataclass
class _Cleaned:
    side: str
    document: pipeline.CleanDocument
    display_name: str
    staged: storage.StagedFile | None = field(default=None)
    kept: dict | None = None  # the kept file (recovery.kept) this came from, instead of an upload


# --- reading -------------------------------------------------------------------


def document_types() -> dict[str, tuple[str, ...]]:
    return current_app.config["RECOVERY_DOCUMENT_TYPES"]


def document_type_label(name: str):
    return DOCUMENT_TYPE_LABELS.get(name) or name.replace("_", " ").capitalize()


def types_with_side(side: str) -> list[str]:
    return [name for name, sides in document_types().items() if side in sides]


def type_labels(names: list[str]) -> list[str]:
    return [str(document_type_label(name)) for name in names]


@dataclass
class DocumentChoice:
    """One document type the seller may choose, as the intake form shows it."""

    name: str
    label: str
    sides: tuple[str, ...]


@dataclass
class UploadSlot:
    """One file field of the intake or resubmission form: its words, and the
    document types that ask for it (empty: every type)."""

    side: str
    label: object
    hint: object
    needed_for: list[str] = field(default_factory=list)
    needed_for_labels: list[str] = field(default_factory=list)


def document_choices() -> list[DocumentChoice]:
    return [DocumentChoice(name, str(document_type_label(name)), sides) for name, sides in document_types().items()]


def intake_slots(chosen: str | None) -> list[UploadSlot]:
    """The file fields of the intake form; hints follow the chosen document type."""
    chosen = chosen if chosen in document_types() else None
    slots = [UploadSlot("front", SIDE_LABELS["front"], side_hint(chosen, "front"))]
    with_back = types_with_side("back")
    if with_back:
        partial = len(with_back) < len(document_types())
        slots.append(
            UploadSlot(
                "back",
                SIDE_LABELS["back"],
                side_hint(chosen, "back"),
                with_back,
                type_labels(with_back) if partial else [],
            )
        )
    if current_app.config["RECOVERY_REQUIRE_SELFIE"]:
        slots.append(UploadSlot("selfie", SIDE_LABELS["selfie"], side_hint(chosen, "selfie")))
    return slots


def case_slots(case: Case) -> list[UploadSlot]:
    """The file fields for sending new documents to ``case``."""
    return [UploadSlot(side, SIDE_LABELS[side], side_hint(case.document_type, side)) for side in case_sides(case)]


def required_sides(document_type: str) -> tuple[str, ...]:
    sides = document_types()[document_type]
    if current_app.config["RECOVERY_REQUIRE_SELFIE"]:
        sides = (*sides, "selfie")
    return sides


def case_sides(case: Case) -> tuple[str, ...]:
    """The sides a case asks for, even if its type was since removed from the settings."""
    if case.document_type in document_types():
        return required_sides(case.document_type)
    return tuple(dict.fromkeys(document.side for document in case.documents)) or ("front",)


def side_hint(document_type: str | None, side: str):
    if side == "front" and document_type == "passport":
        return PASSPORT_FRONT_HINT
    return SIDE_HINTS[side]


# Both are read at every seller's sign-in: built once.
_OPEN_CASE = (
    select(Case)
    .where(Case.user_id == bindparam("user_id"), Case.status.in_(OPEN_STATUSES))
    .order_by(Case.id.desc())
    .limit(1)
)
_LATEST_CASE = (
    select(Case)
    .where(Case.user_id == bindparam("user_id"))
    .order_by(Case.status.in_(OPEN_STATUSES).desc(), Case.id.desc())
    .limit(1)
)


def open_case(user: User) -> Case | None:
    return db.session.execute(_OPEN_CASE, {"user_id": user.id}).scalar_one_or_none()


def latest_case(user: User) -> Case | None:
    """The open case if there is one, otherwise the most recent closed one."""
    return db.session.execute(_LATEST_CASE, {"user_id": user.id}).scalar_one_or_none()


def in_zone(moment: datetime, time_zone: str | None, locale: str) -> str:
    """``moment`` as a person in ``time_zone`` reads it, the zone named."""
    return zoned(moment, time_zone, locale)


def kept_documents(found: dict[str, tuple[pipeline.CleanDocument, str, dict]]) -> dict[str, _Cleaned]:
    """Files kept from an earlier try (``recovery.kept.documents``), as cleaned files."""
    return {side: _Cleaned(side, document, name, kept=entry) for side, (document, name, entry) in found.items()}


# --- opening a case -------------------------------------------------------------


def submit_case(
    user: User,
    document_type: str | None,
    uploads: list[Upload],
    *,
    consent: bool,
    now: datetime,
    address: str | None,
    browser: str | None,
    kept: dict[str, _Cleaned] | None = None,
) -> Case:
    """Open a case for ``user`` with cleaned documents, notify the account, commit.

    The user always comes from the session of the caller, never from the form.
    ``kept`` holds files that passed on an earlier try, for sides not sent again.
    """
    existing = open_case(user)
    if existing is not None:
        raise OpenCaseExists(existing)
    problems: dict[str, object] = {}
    if document_type not in document_types():
        problems["document_type"] = _l("Please choose which document you will send.")
    if not consent:
        problems["consent"] = _l("Please confirm that you agree, so that we can check your documents.")
    sides = required_sides(document_type) if document_type in document_types() else ()
    cleaned = _clean_uploads(uploads, sides, document_type, problems, kept=kept)
    if problems:
        raise UploadProblems(problems, cleaned)

    user_id = user.id
    begin_write()  # the slow work on the files is done: now wait for the write lock
    lock_row(User, user_id)  # two tabs of one seller: one case
    if (raced := open_case(user)) is not None:
        raise OpenCaseExists(raced)
    _files_follow_the_unit(cleaned)
    case = lifecycle.new_case(user, document_type, now=now, address=address, browser=browser)
    _add_documents(case, cleaned, round_number=1, now=now)
    _security_event(user, "recovery_requested", case, now=now, address=address, browser=browser)
    _tell_account(user, case, "recovery/email/requested", now=now, address=address, browser=browser)
    return case


def _clean_uploads(
    uploads: list[Upload],
    sides: tuple[str, ...],
    document_type: str | None,
    problems: dict[str, object],
    *,
    require_all: bool = True,
    sent_before: frozenset[str] = frozenset(),
    kept: dict[str, _Cleaned] | None = None,
) -> list[_Cleaned]:
    """Clean every file for ``sides``; record a message per field for anything wrong.

    ``require_all`` is off for a resubmission, where only the sides the
    reviewer asked about need a new photo; ``sent_before`` holds the hashes of
    the case's earlier documents, so the same picture is not sent again."""
    limits = pipeline.Limits.from_config(current_app.config)
    by_side = {upload.side: upload for upload in uploads if upload.side in SIDES}
    cleaned: list[_Cleaned] = []
    seen: dict[str, str] = {}
    kept = {
        side: item
        for side, item in (kept or {}).items()
        if side in sides and not (by_side.get(side) and by_side[side].present)
    }
    for side, item in kept.items():
        seen[hashlib.sha256(item.document.data).hexdigest()] = side
    if (
        not require_all
        and sides
        and not kept
        and not any(by_side.get(side) and by_side[side].present for side in sides)
    ):
        problems[NO_NEW_PHOTO] = _l(
            "Please choose at least one new photo: the message above says which document we need again."
        )
        return cleaned
    for side in SIDES:
        upload = by_side.get(side)
        present = upload is not None and upload.present
        if side not in sides:
            if present and document_type in document_types():
                problems[side] = _l(
                    "%(document)s needs no %(side)s. Please remove this file.",
                    document=document_type_label(document_type),
                    side=SIDE_LABELS[side],
                )
            continue
        if not present:
            if side in kept:
                cleaned.append(kept[side])
                continue
            if require_all:
                problems[side] = _l("Please add this photo: %(side)s.", side=SIDE_LABELS[side])
            continue
        if upload.extra_files:
            problems[side] = _l("Please choose only one file here.")
            continue
        try:
            name = pipeline.display_name(upload.filename)
            raw_hash = hashlib.sha256(upload.data).hexdigest()
            document = pipeline.clean(upload.data, limits)
        except pipeline.DocumentRejected as rejected:
            problems[side] = rejected.message
            continue
        clean_hash = hashlib.sha256(document.data).hexdigest()
        if clean_hash in sent_before:
            problems[side] = _l("This is the same picture you sent before. Please take a new photo.")
            continue
        twin = seen.get(raw_hash) or seen.get(clean_hash)
        if twin is not None:
            problems[side] = _l(
                "This is the same file as the one for %(side)s. Each photo must be a different picture.",
                side=SIDE_LABELS[twin],
            )
            continue
        seen[raw_hash] = seen[clean_hash] = side
        cleaned.append(_Cleaned(side, document, name))
    return cleaned


def _add_documents(case: Case, cleaned: list[_Cleaned], *, round_number: int, now: datetime) -> None:
    for item in cleaned:
        item.staged = storage.stage(item.document.data)
        db.session.add(
            item.staged.row(
                case_id=case.id,
                round=round_number,
                side=item.side,
                content_type=item.document.content_type,
                width=item.document.width,
                height=item.document.height,
                pages=item.document.pages,
                display_name=item.display_name,
                created_at=now,
            )
        )
    db.session.flush()


def _files_follow_the_unit(cleaned: list[_Cleaned]) -> None:
    """Files staged for ``cleaned`` (by ``_add_documents``) are moved into place
    once the unit has committed, and removed if it does not: a refused or
    failed submission leaves no file."""

    def staged() -> list[storage.StagedFile]:
        return [item.staged for item in cleaned if item.staged is not None]

    on_commit(lambda: storage.commit_staged(staged()))
    on_rollback(lambda: storage.discard_staged(staged()))


def _security_event(
    user: User, kind: str, case: Case, *, now: datetime, address: str | None, browser: str | None
) -> None:
    """The user's own security history lists recovery requests beside sign-ins (ASVS 16.2.1)."""
    record_event(user, kind, now, address=address, browser=browser, case=case.reference)


def _tell_account(
    user: User, case: Case, template: str, *, now: datetime, address: str | None, browser: str | None, **extra
) -> None:
    """Queue ``template`` to every address of the seller account (and the user),
    each in their own language and zone: a recovery request, a withdrawal or a
    cancellation is news for everyone who could lose the account."""
    recipients = list(user.account.users) if user.account is not None else [user]
    if user not in recipients:
        recipients.append(user)
    base = current_app.config["RECOVERY_BASE_URL"].rstrip("/")
    for recipient in recipients:
        locale = recipient.locale if recipient.locale in current_app.config["RECOVERY_LANGUAGES"] else "ja"
        notify.queue_email(
            recipient.email,
            template,
            locale,
            now,
            for_self=recipient.id == user.id,
            user_name=user.display_name or user.email,
            user_email=user.email,
            account_name=user.account.name if user.account is not None else "",
            reference=case.reference,
            when=in_zone(now, recipient.time_zone, locale),
            due=in_zone(case.due_at, recipient.time_zone, locale),
            address=address or "?",
            browser=describe_browser(browser),
            case_url=base + url_for("recovery.case_status"),
            sign_in_url=base + url_for("auth.sign_in"),
            password_url=base + url_for("account.password"),
            product=current_app.config["RECOVERY_PRODUCT_NAME"],
            **extra,
        )


# --- after submission -----------------------------------------------------------


def resubmit_documents(
    user: User,
    uploads: list[Upload],
    *,
    now: datetime,
    address: str | None,
    browser: str | None,
    kept: dict[str, _Cleaned] | None = None,
) -> Case:
    """Send new documents for the user's case that waits on them (needs_info → submitted).

    The documents form the next round; earlier rounds stay for the reviewer.
    The SLA clock resumes where it paused (``lifecycle.transition`` moves ``due_at``).
    """
    case = open_case(user)
    if case is None or case.status != "needs_info":
        raise RecoveryError(_l("Your case is not waiting for new documents at the moment."))
    problems: dict[str, object] = {}
    cleaned = _clean_uploads(
        uploads,
        case_sides(case),
        case.document_type,
        problems,
        require_all=False,
        sent_before=frozenset(document.sha256 for document in case.documents),
        kept=kept,
    )
    if problems:
        raise UploadProblems(problems, cleaned)
    case_id = case.id
    begin_write()
    lock_row(Case, case_id)
    db.session.refresh(case)
    if case.status != "needs_info":  # read again under the lock
        raise RecoveryError(_l("Your case is not waiting for new documents at the moment."))
    _files_follow_the_unit(cleaned)
    next_round = (
        db.session.execute(select(func.max(Document.round)).where(Document.case_id == case_id)).scalar_one() or 0
    ) + 1
    lifecycle.transition(
        case,
        "submitted",
        now=now,
        actor=user,
        action="resubmitted",
        details={"round": next_round},
        address=address,
        browser=browser,
    )
    _add_documents(case, cleaned, round_number=next_round, now=now)
    return case


def withdraw(user: User, *, now: datetime, address: str | None, browser: str | None) -> Case:
    """The seller withdraws their open case while no reviewer is working on it.

    Only the password step may stand behind this request, so a withdrawal is
    news for every address of the account, and a refused one is audited. The
    owner who is fully signed in uses ``cancel_for_owner`` instead, which also
    stops a case a reviewer holds."""
    case = open_case(user)
    if case is None:
        raise RecoveryError(NOTHING_TO_WITHDRAW)
    lock_row(Case, case.id)
    db.session.refresh(case)
    if case.status == "withdrawn":  # by this request's twin (a double click, another tab) just before
        return case
    if not case.is_open:
        raise RecoveryError(NOTHING_TO_WITHDRAW)
    if case.status not in WITHDRAWABLE:  # read again under the lock: a reviewer may have claimed it
        audit.record(
            "case.withdrawal_refused",
            now=now,
            actor=user,
            subject_type="case",
            subject_id=case.reference,
            details={"status": case.status},
            address=address,
            browser=browser,
        )
        raise RecoveryError(
            _l(
                "A reviewer is working on your case right now, so it cannot be withdrawn at this "
                "moment. If you can sign in with your 2-step verification, do so: that stops the "
                "case at once."
            )
        )
    lifecycle.transition(case, "withdrawn", now=now, actor=user, action="withdrawn", address=address, browser=browser)
    _security_event(user, "recovery_withdrawn", case, now=now, address=address, browser=browser)
    _tell_account(user, case, "recovery/email/withdrawn", now=now, address=address, browser=browser)
    return case


# --- the owner who still has a working second step wins ---------------------------


def cancel_for_owner(
    user: User, *, reason: str, now: datetime, address: str | None, browser: str | None, via: str | None = None
) -> Case | None:
    """Stop the user's open case because its owner proved the second step.

    Called when the user passes 2SV by any method (the case is not needed, and
    may have been opened by someone holding only the password) and when a
    signed-in owner says "this wasn't me". Works at every open status,
    including while a reviewer holds the case; a decision that committed first
    stands. Returns the cancelled case, or None when nothing was open.

    Each try is one conditional UPDATE from the status just read; a reviewer
    moving the case in between (a claim, a release) makes it fail and it is
    read and tried again, so the owner wins against every move but a decision.
    """
    if reason not in CANCEL_REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    for _ in range(5):
        case = open_case(user)
        if case is None:
            return None
        try:
            lifecycle.transition(
                case,
                "cancelled",
                now=now,
                actor=user,
                action="cancelled",
                address=address,
                browser=browser,
                details={"reason": reason, **({"via": via} if via else {})},
            )
        except lifecycle.TransitionError:
            db.session.expire_all()
            continue
        _security_event(user, "recovery_cancelled", case, now=now, address=address, browser=browser)
        _tell_account(
            user,
            case,
            "recovery/email/cancelled",
            now=now,
            address=address,
            browser=browser,
            by_sign_in=reason == "owner_signed_in",
        )
        return case
    raise RecoveryError(_l("Your case changed while we tried to cancel it. Please try again."))


def how_cancelled(case: Case) -> str | None:
    """How the owner stopped ``case`` (a key of ``CANCEL_REASONS``: by signing
    in, or by saying it was not them), as its audit trail records it."""
    cancelled = audit.entries_about("case", case.reference).where(AuditEvent.action == "case.cancelled")
    entry = db.session.execute(cancelled.order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none()
    return (entry.details or {}).get("reason") if entry is not None else None


def recently_cancelled(user: User, now: datetime, days: int = 7) -> Case | None:
    """The user's latest case if the owner cancelled it in the last ``days``: the
    home page keeps saying so, with the way to secure the account."""
    case = latest_case(user)
    if case is None or case.status != "cancelled" or case.closed_at is None:
        return None
    return case if now - case.closed_at <= timedelta(days=days) else None
