"""The audit log: append-only, every entry holding the SHA-256 of the one before.

``record`` is the only writer. It runs inside the caller's transaction, so an
action and its audit event commit together or not at all. ``verify`` walks the
chain and names the first entry whose hash or link does not hold.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from .extensions import db
from .models import AuditEvent, AuditHead

GENESIS = "0" * 64
# Keys that must never reach the log, whatever a caller passes.
FORBIDDEN_KEYS = {"password", "code", "secret", "token", "seed", "content"}


def _digest(event: AuditEvent) -> str:
    body = {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "details": event.details,
        "address": event.address,
        "browser": event.browser,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    action: str,
    *,
    now: datetime,
    actor=None,
    subject_type: str,
    subject_id,
    details: dict | None = None,
    address: str | None = None,
    browser: str | None = None,
) -> AuditEvent:
    details = dict(details or {})
    leaked = FORBIDDEN_KEYS.intersection(details)
    if leaked:
        raise ValueError(f"audit details may not hold {sorted(leaked)}")
    # Taking the head row's write lock first orders concurrent writers, so
    # two transactions can never link to the same predecessor.
    bumped = db.session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    if bumped.rowcount == 0:
        db.session.add(AuditHead(id=1, seq=1, hash=GENESIS))
        db.session.flush()
    head = db.session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    db.session.refresh(head)
    event = AuditEvent(
        seq=head.seq,
        at=now.replace(microsecond=(now.microsecond // 1000) * 1000),
        actor_id=getattr(actor, "id", None),
        actor_label=getattr(actor, "email", None) or (actor if isinstance(actor, str) else "system"),
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        details=details,
        address=address,
        browser=(browser or None) and browser[:300],
        prev_hash=head.hash,
        hash="",
    )
    event.hash = _digest(event)
    head.hash = event.hash
    db.session.add(event)
    db.session.flush()
    return event


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None


def verify(batch: int = 1000) -> VerifyResult:
    """Walk the chain in order; stop at the first entry that does not hold."""
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = (
            db.session.execute(select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch))
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, "entry missing")
            if event.prev_hash != prev_hash:
                return VerifyResult(False, checked, event.seq, "link to the previous entry does not match")
            if _digest(event) != event.hash:
                return VerifyResult(False, checked, event.seq, "content does not match its hash")
            prev_hash = event.hash
            expected_seq += 1
            checked += 1
            last_seq = event.seq
        db.session.expire_all()
    head = db.session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return VerifyResult(False, checked, checked + 1, "entries after this point were removed")
    return VerifyResult(True, checked)
