"""Security events: who did what to whose sign-in, when and from where (ASVS 16.2.1).

The one writer of ``security_events``. Details never hold secrets or codes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from ..database import core_execute
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


# A plain INSERT, built once: every sign-in writes an event, and nothing reads
# the row back in the same unit (the ORM's unit of work would only add cost).
_INSERT = insert(SecurityEvent)


def record_event(
    user, kind: str, now: datetime, *, address: str | None = None, browser: str | None = None, **details
) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    db.session.flush()  # a user added in this unit has its id from here on
    core_execute(
        _INSERT,
        {
            "user_id": getattr(user, "id", None),
            "kind": kind,
            "at": now,
            "address": address,
            "browser": (browser or "")[:300] or None,
            "details": details,
        },
    )
