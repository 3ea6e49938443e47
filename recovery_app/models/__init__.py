"""SQLAlchemy models, one module per aggregate. Importing this registers them all."""

from .audit import AuditEvent, AuditHead
from .cases import Case, CaseNote, Decision, Document
from .outbox import JobRun, OutboxMessage, SchedulerLease
from .prechecks import DocumentHash, DocumentMatch, PrecheckResult, PrecheckRun
from .reports import ReportRollup, ReportRollupMark
from .twofactor import Passkey, PasskeyChallenge, RecoveryCode, SentCode, TrustedDevice, TwoFactorMethod
from .users import Account, ActionToken, PasswordStep, SecurityEvent, User, UserSession

__all__ = [
    "Account",
    "ActionToken",
    "AuditEvent",
    "AuditHead",
    "Case",
    "CaseNote",
    "Decision",
    "Document",
    "DocumentHash",
    "DocumentMatch",
    "JobRun",
    "OutboxMessage",
    "Passkey",
    "PasskeyChallenge",
    "PasswordStep",
    "PrecheckResult",
    "PrecheckRun",
    "RecoveryCode",
    "ReportRollup",
    "ReportRollupMark",
    "SchedulerLease",
    "SecurityEvent",
    "SentCode",
    "TrustedDevice",
    "TwoFactorMethod",
    "User",
    "UserSession",
]
