"""SQLAlchemy models, one module per aggregate. Importing this registers them all."""

from .audit import AuditEvent, AuditHead
from .cases import Case, CaseNote, Decision, Document
from .outbox import JobRun, OutboxMessage, SchedulerLease
from .twofactor import RecoveryCode, SentCode, TrustedDevice, TwoFactorMethod
from .users import Account, ActionToken, SecurityEvent, User, UserSession

__all__ = [
    "Account",
    "ActionToken",
    "AuditEvent",
    "AuditHead",
    "Case",
    "CaseNote",
    "Decision",
    "Document",
    "JobRun",
    "OutboxMessage",
    "RecoveryCode",
    "SchedulerLease",
    "SecurityEvent",
    "SentCode",
    "TrustedDevice",
    "TwoFactorMethod",
    "User",
    "UserSession",
]
