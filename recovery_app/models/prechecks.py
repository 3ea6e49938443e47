"""Automatic pre-checks on a case's documents: the runs, their results, and the
perceptual hashes kept for reused-document detection.

Pre-checks advise reviewers; nothing here ever decides a case or moves its status.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime

BAND_COUNT = 16  # a 256-bit pHash cut into 16 bands of 16 bits (see prechecks/reuse.py)


class PrecheckRun(db.Model):
    """One run of every check over one round of a case's documents.

    The row is the job's unit of work: claimed by a conditional UPDATE, retried
    with the error kept in ``last_error`` until ``max attempts``, then ``failed``.
    """

    __tablename__ = "precheck_runs"
    __table_args__ = (
        UniqueConstraint("case_id", "round"),
        Index("ix_precheck_runs_status_next_try_at", "status", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PrecheckResult(db.Model):
    """The outcome of one check on one document, with what was measured and by
    which library versions."""

    __tablename__ = "precheck_results"
    __table_args__ = (
        UniqueConstraint("document_id", "check"),
        Index("ix_precheck_results_case_id_verdict", "case_id", "verdict"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    check: Mapped[str] = mapped_column(String(20))  # quality | mrz | reuse | face
    verdict: Mapped[str] = mapped_column(String(10))  # pass | review ("look closely") | fail
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    measured: Mapped[dict] = mapped_column(JSON, default=dict)
    versions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the personal data read from the document (MRZ fields) was removed,
    # after retention purged the document itself. The verdict and reasons stay.
    scrubbed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DocumentHash(db.Model):
    """The perceptual hash of a document image. Kept after retention deletes the
    file: it cannot be turned back into the image, and it lets a document
    reused by someone else be recognised later.

    Each band is 16 bits of the hash in its own indexed column: two hashes
    within 15 bits of each other share at least one band exactly (pigeonhole),
    so a lookup is 16 index probes, never a scan.

    Each band's index covers what the lookup reads (band, hash, user, id): at a
    million hashes a few hundred unrelated rows share a band by chance, and the
    lookup measures their distance from the index entries alone, without
    reading a single table row for them.
    """

    __tablename__ = "document_hashes"
    __table_args__ = tuple(
        Index(f"ix_document_hashes_band{i}_covering", f"band{i}", "phash", "user_id", "id") for i in range(BAND_COUNT)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    phash: Mapped[str] = mapped_column(String(64))
    band0: Mapped[int] = mapped_column(Integer)
    band1: Mapped[int] = mapped_column(Integer)
    band2: Mapped[int] = mapped_column(Integer)
    band3: Mapped[int] = mapped_column(Integer)
    band4: Mapped[int] = mapped_column(Integer)
    band5: Mapped[int] = mapped_column(Integer)
    band6: Mapped[int] = mapped_column(Integer)
    band7: Mapped[int] = mapped_column(Integer)
    band8: Mapped[int] = mapped_column(Integer)
    band9: Mapped[int] = mapped_column(Integer)
    band10: Mapped[int] = mapped_column(Integer)
    band11: Mapped[int] = mapped_column(Integer)
    band12: Mapped[int] = mapped_column(Integer)
    band13: Mapped[int] = mapped_column(Integer)
    band14: Mapped[int] = mapped_column(Integer)
    band15: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def band_columns(cls) -> list:
        return [getattr(cls, f"band{i}") for i in range(BAND_COUNT)]


class DocumentMatch(db.Model):
    """A document that looks like another user's document; stored both ways."""

    __tablename__ = "document_matches"
    __table_args__ = (UniqueConstraint("document_id", "matched_document_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    matched_case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    matched_document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    distance: Mapped[int] = mapped_column(Integer)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)
