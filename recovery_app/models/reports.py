"""Daily rollups of the managers' figures, so a report reads a few rows per
day instead of every decided case (see ``reports.rollups``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime


class ReportRollup(db.Model):
    """One count (or largest value) of one measure on one calendar day of one
    time zone: e.g. ("Asia/Tokyo", "2026-03-01", "decision_time", 0, "64") is
    the number of cases decided that day whose clock time fell in bucket 64."""

    __tablename__ = "report_rollups"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD in ``zone``
    measure: Mapped[str] = mapped_column(String(30), primary_key=True)
    reviewer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: none
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # '' when the measure has none
    n: Mapped[int] = mapped_column(BigInteger)


class ReportRollupMark(db.Model):
    """How far the rollups of a zone reach: every case event at or after
    ``rolled_from`` and before ``rolled_until`` is counted in them; a report
    counts later events (and earlier ones) from the cases."""

    __tablename__ = "report_rollup_marks"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    rolled_from: Mapped[datetime] = mapped_column(UTCDateTime)
    rolled_until: Mapped[datetime] = mapped_column(UTCDateTime)
