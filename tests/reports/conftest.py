"""A small fixed data set whose report figures were worked out by hand.

Ten cases submitted on 2026-03-01 (UTC) from 00:00, one a minute, decided the
same day. Hours on the SLA clock at decision, sorted:

    1, 2, 3, 4, 5, 6, 8, 10 (15 h wall time with a 5 h needs_info pause), 13, 20

    nearest-rank median  = rank 5  = 5 h
    90th percentile      = rank 9  = 13 h
    99th percentile      = rank 10 = 20 h, longest 20 h
    decided within 12 h on the clock: 8 of 10 = 80 % (the paused case counts
    as within: 15 h of wall time but 10 h on the clock)

First claim after (h): .25 .5 .5 1 1 1 1 2 3 6 → median 1 h, p90 3 h, longest 6 h.
Handling (clock from first claim to decision): reviewer A .75 1.5 2.5 3 4
(median 2.5 h, 5 of 5 approved), reviewer B 5 6 9 10 14 (median 9 h,
3 of 5 approved; the 13 h and 20 h cases are rejected and were breached
while B held them). Overall median handling: 4 h.

Also: one case opened on 02-20 that expired on 03-01 (after one request for
documents on 02-21), and three open cases at "now" (03-02 09:00): submitted 1 h,
10 h (at risk) and 13 h (breached) ago.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recovery_app import lifecycle
from recovery_app.models import Decision
from recovery_app.scheduler import jobs

DAY = datetime(2026, 3, 1, tzinfo=UTC)
# (clock hours at decision, first claim after hours, reviewer index, outcome, reason, pause)
CASES = [
    (1, 0.25, 0, "approved", None, False),
    (2, 0.5, 0, "approved", None, False),
    (3, 0.5, 0, "approved", None, False),
    (4, 1, 0, "approved", None, False),
    (5, 1, 0, "approved", None, False),
    (6, 1, 1, "approved", None, False),
    (8, 2, 1, "approved", None, False),
    (10, 1, 1, "approved", None, True),
    (13, 3, 1, "rejected", "unreadable", False),
    (20, 6, 1, "rejected", "name_mismatch", False),
]


def _claim(case, reviewer, at):
    lifecycle.transition(case, "in_review", now=at, actor=reviewer, action="claimed")
    case.claimed_by_id, case.claimed_at, case.last_activity_at = reviewer.id, at, at
    case.first_claimed_at = case.first_claimed_at or at


@pytest.fixture
def fixed_data(make, now, db):
    reviewers = [make.user("reviewer", display_name="Reviewer A"), make.user("reviewer", display_name="Reviewer B")]
    manager = make.user("manager", locale="en", display_name="Manager M")
    cases = []
    for i, (clock, claim, who, outcome, reason, pause) in enumerate(CASES):
        start = DAY + timedelta(minutes=i)
        reviewer = reviewers[who]
        case = make.case(submitted_at=start)
        _claim(case, reviewer, start + timedelta(hours=claim))
        wall = clock
        if pause:  # asked for documents at 2 h, new ones arrived at 7 h
            lifecycle.transition(
                case, "needs_info", now=start + timedelta(hours=2), actor=reviewer, action="info_requested"
            )
            db.session.add(
                Decision(
                    case_id=case.id,
                    reviewer_id=reviewer.id,
                    action="request_info",
                    reason_code="unreadable",
                    created_at=start + timedelta(hours=2),
                )
            )
            lifecycle.transition(
                case, "submitted", now=start + timedelta(hours=7), actor="seller", action="resubmitted"
            )
            _claim(case, reviewer, start + timedelta(hours=7, minutes=5))
            wall = clock + 5
        if clock > 12:  # the sweep caught it past due while the reviewer held it
            jobs.sla_sweep(start + timedelta(hours=12, minutes=1))
        decided_at = start + timedelta(hours=wall)
        lifecycle.transition(case, outcome, now=decided_at, actor=reviewer, action=outcome)
        case.decided_by_id, case.decision, case.reason_code = reviewer.id, outcome, reason
        db.session.add(
            Decision(
                case_id=case.id,
                reviewer_id=reviewer.id,
                action="approve" if outcome == "approved" else "reject",
                reason_code=reason,
                created_at=decided_at,
            )
        )
        cases.append(case)
    expired = make.case(submitted_at=datetime(2026, 2, 20, tzinfo=UTC))
    _claim(expired, reviewers[0], datetime(2026, 2, 21, tzinfo=UTC))
    lifecycle.transition(
        expired, "needs_info", now=datetime(2026, 2, 21, 1, tzinfo=UTC), actor=reviewers[0], action="info_requested"
    )
    jobs.expire_needs_info(datetime(2026, 3, 1, 6, tzinfo=UTC))
    open_cases = [make.case(submitted_at=now - timedelta(hours=h)) for h in (1, 10, 13)]
    jobs.sla_sweep(now)
    db.session.flush()
    return {"reviewers": reviewers, "manager": manager, "cases": cases, "open": open_cases}
