"""What the review desk's rules share: the refusal a reviewer reads, finding a
case, who gave a first approval, and the audit of a refused action.

The rules themselves live beside this module, one concern each: the queue
(queue.py), claims (claims.py), the case file (casefile.py) and decisions,
with the one code path that resets a seller's 2-step verification
(decisions.py). Services only flush: the request that calls them commits once
at its edge.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from .. import audit
from ..case_labels import REJECTION_REASON_LABELS
from ..domain import DomainError
from ..extensions import db
from ..models import (
    Case,
    Decision,
    User,
)

HELD_STATUSES = ("in_review", "awaiting_second_approval")
REASON_LABELS = REJECTION_REASON_LABELS


class ReviewError(DomainError):
    """A review action that cannot happen; ``message`` says why, in the viewer's language."""


class CaseNotFound(LookupError):
    """No such case, or no such document on it, or not one this viewer may see."""


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


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


def _first_approver_id(case: Case) -> int | None:
    return db.session.execute(
        select(Decision.reviewer_id)
        .where(Decision.case_id == case.id, Decision.action == "first_approval")
        .order_by(Decision.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def record_refusal(
    reference: str,
    actor: User,
    action: str,
    error: ReviewError,
    *,
    now: datetime,
    address: str | None = None,
    browser: str | None = None,
) -> None:
    """Audit a staff action that was refused (ASVS 16.3.2): who tried what, and why not."""
    audit.record(
        "case.refused",
        now=now,
        actor=actor,
        subject_type="case",
        subject_id=reference,
        details={"action": action, "reason": str(error.message)},
        address=address,
        browser=browser,
    )
