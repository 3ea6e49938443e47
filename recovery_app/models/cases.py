"""Recovery cases, their documents, notes and decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime


class CaseStatus(StrEnum):
    """Where a case stands; lifecycle.TRANSITIONS says which may follow which,
    case_labels.STATUS_LABELS how each is worded on every page."""

    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"
    NEEDS_INFO = "needs_info"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the account's owner passed 2SV, or cancelled it signed in


# Statuses during which the SLA clock runs: the case waits on us.
CLOCK_RUNNING_STATUSES = (CaseStatus.SUBMITTED, CaseStatus.IN_REVIEW, CaseStatus.AWAITING_SECOND_APPROVAL)
OPEN_STATUSES = CLOCK_RUNNING_STATUSES + (CaseStatus.NEEDS_INFO,)
REASON_CODES = ("unreadable", "expired", "name_mismatch", "selfie_mismatch", "suspected_fraud", "other")
DOCUMENT_SIDES = ("front", "back", "selfie")


class Case(db.Model):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_due_at", "status", "due_at"),
        Index("ix_cases_user_status", "user_id", "status"),
        # The managers' reports select by these times.
        Index("ix_cases_submitted_at", "submitted_at"),
        Index("ix_cases_decided_at", "decided_at"),
        # Breaches while held, per reviewer, over a report's range.
        Index("ix_cases_breached_at", "breached_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=False)
    document_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(30))
    opened_address: Mapped[str | None] = mapped_column(String(64))
    opened_browser: Mapped[str | None] = mapped_column(String(300))
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    risk_reasons: Mapped[list] = mapped_column(JSON, default=list)
    # When the review's own risk rules last looked at the case (None: not yet);
    # other checks may set high_risk before that and are kept.
    risk_assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The SLA clock: due_at = clock_started_at + SLA + paused_seconds, stored so the
    # queue and the sweep are plain indexed range queries.
    clock_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at_risk_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who held the case when it breached (per-reviewer reports); set by the SLA sweep.
    breached_held_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    info_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    info_request_message: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str | None] = mapped_column(String(20))
    reason_code: Mapped[str | None] = mapped_column(String(30))
    message_to_seller: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    documents_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User", foreign_keys=[user_id])
    claimed_by = relationship("User", foreign_keys=[claimed_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
    documents: Mapped[list[Document]] = relationship(back_populates="case", order_by="Document.id")
    notes: Mapped[list[CaseNote]] = relationship(order_by="CaseNote.id")
    decisions: Mapped[list[Decision]] = relationship(order_by="Decision.id")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Document(db.Model):
    __tablename__ = "documents"
    # (case, round): a case's documents, and its newest round read from the index alone.
    __table_args__ = (Index("ix_documents_case_id_round", "case_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer, default=1)
    side: Mapped[str] = mapped_column(String(10))
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    key_id: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship(back_populates="documents")


class CaseNote(db.Model):
    """An internal note by staff; never shown to the seller."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    author = relationship("User")


class Decision(db.Model):
    """Every decision step on a case, including first and second approvals."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    reason_code: Mapped[str | None] = mapped_column(String(30))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    reviewer = relationship("User")
