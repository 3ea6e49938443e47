"""The audit log: append-only, every entry holding the SHA-256 of the one before.

``record`` (one event) and ``record_many`` (a batch, for jobs that act on many
cases at once) are the only writers. They run inside the caller's transaction,
so an action and its audit events commit together or not at all. Both take the
chain's head row first (an UPDATE, which holds the row's write lock until the
commit), so concurrent writers line up and never link to the same predecessor.
``verify`` walks the chain and names the first entry whose hash or link does
not hold.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db
from .models import AuditEvent, AuditHead

GENESIS = "0" * 64
# Keys that must never reach the log, whatever a caller passes.
FORBIDDEN_KEYS = {"password", "code", "secret", "token", "seed", "content"}


_HASHED = (
    "seq",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "subject_type",
    "subject_id",
    "details",
    "address",
    "browser",
    "prev_hash",
)


def _digest(event: AuditEvent) -> str:
    return _digest_of({name: getattr(event, name) for name in _HASHED})


def _digest_of(fields: dict) -> str:
    body = {name: fields[name] for name in _HASHED}
    body["at"] = fields["at"].isoformat()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _checked_details(details: dict | None) -> dict:
    details = dict(details or {})
    leaked = FORBIDDEN_KEYS.intersection(details)
    if leaked:
        raise ValueError(f"audit details may not hold {sorted(leaked)}")
    return details


def _actor_fields(actor) -> dict:
    return {
        "actor_id": getattr(actor, "id", None),
        "actor_label": getattr(actor, "email", None) or (actor if isinstance(actor, str) else "system"),
    }


def _move_head(by: int) -> tuple[int, str]:
    """Move the head's ``seq`` on by ``by`` and return the new ``seq`` and the
    hash the head held: from then until the commit the head row is this
    transaction's. An empty log gets its head first; two first writers at
    once both try, one creates it and the other finds it (no unique-key
    error), and each then moves it in turn."""
    move = (
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + by)
        .returning(AuditHead.seq, AuditHead.hash)
        .execution_options(synchronize_session=False)
    )
    moved = db.session.execute(move).first()
    if moved is None:
        dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
        db.session.execute(dialect.insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        moved = db.session.execute(move).one()
    return moved.seq, moved.hash


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
    details = _checked_details(details)
    # Taking the head row's write lock first orders concurrent writers, so
    # two transactions can never link to the same predecessor.
    _move_head(1)
    head = db.session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    db.session.refresh(head)
    event = AuditEvent(
        seq=head.seq,
        at=_stored_time(now),
        **_actor_fields(actor),
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


def entries_about(subject_type: str, subject_id) -> Select:
    """A query for the entries about one subject (a case by its reference),
    for the caller to narrow and order; the subject index serves it."""
    return select(AuditEvent).where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == str(subject_id))


def _stored_time(now: datetime) -> datetime:
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)  # what every database keeps


@dataclass(frozen=True)
class Entry:
    """One event of a batch for ``record_many``."""

    action: str
    subject_type: str
    subject_id: object
    details: dict | None = None


def record_many(
    entries: list[Entry], *, now: datetime, actor=None, address: str | None = None, browser: str | None = None
) -> int:
    """Append ``entries`` in order, in three statements however many there are
    (the head moved by their number, one multi-row INSERT, the head's new
    hash): the chain is computed here in one pass. Returns how many were added.

    The first statement moves the head's ``seq`` on by the batch's size and
    returns the hash it held: from then until the commit the head row is this
    transaction's (PostgreSQL's row lock; on SQLite the unit holds the write
    lock), so a concurrent ``record`` or ``record_many`` waits and then links
    to the last entry of this batch."""
    if not entries:
        return 0
    fields = [(_checked_details(entry.details), entry) for entry in entries]
    last_seq, prev_hash = _move_head(len(entries))
    shared = {
        "at": _stored_time(now),
        **_actor_fields(actor),
        "address": address,
        "browser": (browser or None) and browser[:300],
    }
    rows = []
    for seq, (details, entry) in enumerate(fields, start=last_seq - len(entries) + 1):
        row = {
            **shared,
            "seq": seq,
            "action": entry.action,
            "subject_type": entry.subject_type,
            "subject_id": str(entry.subject_id),
            "details": details,
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = _digest_of(row)
        rows.append(row)
    db.session.execute(insert(AuditEvent), rows)
    db.session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(hash=prev_hash).execution_options(synchronize_session=False)
    )
    head = db.session.identity_map.get(db.session.identity_key(AuditHead, 1))
    if head is not None:
        db.session.expire(head)  # a head loaded earlier in this unit is read again when next used
    return len(entries)


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
            db.session.execute(
                select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
            )
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
