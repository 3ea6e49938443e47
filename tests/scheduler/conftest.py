"""Helpers for the scheduler's tests: cases moved the way reviewers and
sellers move them (the lifecycle, plus the claim columns)."""

from __future__ import annotations

import pytest

from recovery_app import lifecycle
from recovery_app.notify.senders import SendError


class ProviderDown:
    """An SMS/e-mail provider that refuses every message (the sender
    interface an operator configures with RECOVERY_SENDER)."""

    def send(self, message) -> None:
        raise SendError("provider unavailable")


class Desk:
    def claim(self, case, reviewer, at):
        lifecycle.transition(case, "in_review", now=at, actor=reviewer, action="claimed")
        case.claimed_by_id, case.claimed_at, case.last_activity_at = reviewer.id, at, at
        case.first_claimed_at = case.first_claimed_at or at
        return case

    def ask_for_documents(self, case, reviewer, at):
        lifecycle.transition(case, "needs_info", now=at, actor=reviewer, action="info_requested")
        return case

    def resubmit(self, case, at):
        lifecycle.transition(case, "submitted", now=at, actor="seller", action="resubmitted")
        return case

    def decide(self, case, reviewer, outcome, at, reason=None):
        lifecycle.transition(case, outcome, now=at, actor=reviewer, action=outcome)
        case.decided_by_id, case.decision, case.reason_code = reviewer.id, outcome, reason
        return case


@pytest.fixture
def desk(app):
    return Desk()
