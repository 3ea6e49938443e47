"""Security events: who did what to whose sign-in, when and from where (ASVS 16.2.1).

The one writer of ``security_events``. Details never hold secrets or codes.
"""

from __future__ import annotations

from datetime import datetime

from ..extensions import db
from ..models import SecurityEvent

KINDS = (
    "signed_in",
    "signed_out",
    "password_failed",
    "code_failed",
    "code_locked",
    "hard_locked",
    "unlocked",
    "enrolled",
    "method_added",
    "method_removed",
    "method_primary_changed",
    "recovery_codes_generated",
    "recovery_code_used",
    "trusted_device_added",
    "trusted_device_revoked",
    "twofactor_disabled",
    "password_changed",
    "password_reset_requested",
    "email_changed",
    "sessions_ended",
    "invited",
    "user_removed",
    "recovery_requested",
    "recovery_withdrawn",
    "recovery_cancelled",
    "recovery_approved",
    "recovery_rejected",
    "passkey_added",
    "passkey_removed",
    "passkey_counter_backwards",
)


def record_event(
    user, kind: str, now: datetime, *, address: str | None = None, browser: str | None = None, **details
) -> SecurityEvent:
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    event = SecurityEvent(
        user_id=getattr(user, "id", None),
        kind=kind,
        at=now,
        address=address,
        browser=(browser or "")[:300] or None,
        details=details,
    )
    db.session.add(event)
    return event
