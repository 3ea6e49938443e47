"""The outbox's rules: queueing, claiming a row before it is sent, recording
what happened, delivery reports, and the counts managers see.

Every row goes ``pending -> sending -> sent | failed`` (or back to ``pending``
to be retried later). A row is only ever sent by whoever moved it to
``sending``: the move is one conditional UPDATE, so of an immediate send, the
retry job and a ``scheduler run-once`` racing for one row, exactly one wins.
These functions only flush; ``delivery`` commits around them.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import case, func, insert, select, update

from ..database import core_execute
from ..extensions import db
from ..models import OutboxMessage

MAX_TRIES = 6
CODE_CHANNELS = ("sms", "voice")
MASK = "••••••"
# Six digits, written together (SMS) or one by one for a voice call ("1、2、3…").
_CODE_LIKE = re.compile(r"(?<!\d)\d(?:[ ,、]{0,2}\d){5}(?!\d)")
# What a delivery report may say, and which of those mean the message did not arrive.
FINAL_REPORTS = frozenset({"delivered", "undelivered", "failed", "completed", "busy", "no-answer", "canceled"})
NOT_DELIVERED = frozenset({"undelivered", "failed", "busy", "no-answer", "canceled"})


# --- queueing ------------------------------------------------------------------------

# Built once: every queued message goes in through it (a sign-in's new-device notice, say).
_NEW_MESSAGE = insert(OutboxMessage).returning(OutboxMessage.id)


def queue_email(to: str, template: str, locale: str, now: datetime, **context) -> int:
    """Queue ``templates/<template>.txt`` (``auth/email/new_device``, say) for
    ``to``, in the recipient's language.

    The row keeps the template and its context; the text is written by whoever
    sends it, after the commit (``written``), so a request that tells someone
    something does not spend its time composing the e-mail. The context is
    therefore plain values only (text, numbers, lists, dicts). Returns the
    new row's id.
    """
    return _queue("email", to, template, locale, "", "", now, payload={"context": _kept_context(context)})


@dataclass(frozen=True)
class Email:
    """One e-mail of a batch for ``queue_emails``."""

    to: str
    template: str
    locale: str
    context: dict


def queue_emails(emails: list[Email], now: datetime) -> int:
    """Queue many e-mails in one multi-row INSERT (a job telling several people
    about many cases at once); each is handed to its sender after the commit,
    like ``queue_email``'s. Returns how many were queued."""
    if not emails:
        return 0
    rows = [
        _row(
            "email",
            email.to,
            email.template,
            email.locale,
            "",
            "",
            now,
            payload={"context": _kept_context(email.context)},
        )
        for email in emails
    ]
    ids = core_execute(_NEW_MESSAGE, rows).scalars().all()
    from .delivery import hand_over_after_commit

    for message_id in ids:
        hand_over_after_commit(message_id)
    return len(ids)


def _kept_context(context: dict) -> dict:
    if "code" in context:
        raise ValueError("codes are never sent by e-mail")
    try:
        return json.loads(json.dumps(context))
    except TypeError as exc:
        raise ValueError(f"an e-mail's context is kept with the message: plain values only ({exc})") from None


def render_email(template: str, locale: str, context: dict) -> tuple[str, str]:
    """(subject, body) of ``templates/<template>.txt`` in ``locale``: the first
    line of the rendered template is the subject, the rest the body."""
    with force_locale(locale):
        rendered = render_template(f"{template}.txt", **context).strip()
    subject, _, body = rendered.partition("\n")
    return _fitted_subject(subject.strip()), body.strip() + "\n"


# The outbox keeps the subject an e-mail was sent with; one written from long
# names (an address of 250 characters that joined an account of 190) is cut to
# what the row holds, so what is sent and what is kept are the same text.
SUBJECT_MAX = OutboxMessage.__table__.c.subject.type.length


def _fitted_subject(subject: str) -> str:
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def text_of(message: OutboxMessage) -> tuple[str, str]:
    """(subject, body) of a row, written from its template if no sender has yet."""
    if message.channel == "email" and not message.body:
        return render_email(message.template, message.locale, (message.payload or {}).get("context", {}))
    return message.subject, message.body


def queue_code(channel: str, to_e164: str, code: str, locale: str, now: datetime) -> int:
    """Queue a one-time code by SMS or voice call (never e-mail); returns the new row's id."""
    if channel not in CODE_CHANNELS:
        raise ValueError("codes go by sms or voice only")
    template = f"code_{channel}"
    # Read aloud digit by digit, with a pause between digits.
    spoken = ("、" if locale == "ja" else ", ").join(code)
    with force_locale(locale):
        body = render_template(f"notify/{template}.txt", code=code, spoken=spoken).strip()
    return _queue(channel, to_e164, template, locale, "", body + "\n", now)


def _queue(
    channel: str,
    to: str,
    template: str,
    locale: str,
    subject: str,
    body: str,
    now: datetime,
    payload: dict | None = None,
) -> int:
    from .delivery import hand_over_after_commit

    row = _row(channel, to, template, locale, subject, body, now, payload=payload)
    message_id = core_execute(_NEW_MESSAGE, row).scalar_one()
    hand_over_after_commit(message_id)
    return message_id


def _row(
    channel: str,
    to: str,
    template: str,
    locale: str,
    subject: str,
    body: str,
    now: datetime,
    *,
    payload: dict | None = None,
) -> dict:
    # Handed over at once after the commit, the row is the retry job's only
    # once it has had that long to go.
    head_start = current_app.config["RECOVERY_OUTBOX_RETRY_AFTER_SECONDS"]
    immediate = current_app.config["RECOVERY_SEND_AFTER_COMMIT"]
    return {
        "channel": channel,
        "to": to,
        "template": template,
        "locale": locale,
        "subject": subject,
        "body": body,
        "payload": payload or {},
        "status": "pending",
        "tries": 0,
        "next_try_at": now + timedelta(seconds=head_start if immediate else 0),
        "created_at": now,
    }


# --- claiming --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """What a sender needs of a claimed row, read while the claim was taken
    (the send itself happens outside any transaction)."""

    id: int
    claim_token: str
    channel: str
    to: str
    template: str
    locale: str
    subject: str
    body: str
    tries: int
    created_at: datetime
    context: dict = field(default_factory=dict)


def written(outgoing: Outgoing) -> Outgoing:
    """The message with its text: an e-mail queued with only its template and
    context is written now, by the sender's thread or the retry job, outside
    the transaction that queued it."""
    if outgoing.channel != "email" or outgoing.body:
        return outgoing
    subject, body = render_email(outgoing.template, outgoing.locale, outgoing.context)
    return replace(outgoing, subject=subject, body=body)


def _claim(condition, now: datetime, limit: int) -> list[Outgoing]:
    token = secrets.token_hex(16)
    candidates = (
        select(OutboxMessage.id).where(condition).order_by(OutboxMessage.next_try_at, OutboxMessage.id).limit(limit)
    )
    # The subquery picks candidates; the UPDATE's own WHERE decides, row by
    # row, under the row's write lock: a row another claimer took meanwhile
    # is no longer 'pending' and is left out.
    rows = core_execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates.scalar_subquery()), condition)
        .values(status="sending", claim_token=token, claimed_at=now, tries=OutboxMessage.tries + 1)
        .returning(
            OutboxMessage.id,
            OutboxMessage.channel,
            OutboxMessage.to,
            OutboxMessage.template,
            OutboxMessage.locale,
            OutboxMessage.subject,
            OutboxMessage.body,
            OutboxMessage.tries,
            OutboxMessage.created_at,
            OutboxMessage.payload,
        )
    ).all()
    return sorted(
        (
            Outgoing(
                row.id,
                token,
                row.channel,
                row.to,
                row.template,
                row.locale,
                row.subject,
                row.body,
                row.tries,
                row.created_at,
                (row.payload or {}).get("context", {}),
            )
            for row in rows
        ),
        key=lambda o: o.id,
    )


def claim_new(ids: list[int], now: datetime) -> list[Outgoing]:
    """The immediate send's claim: rows just queued (or put back by an operator), never tried."""
    if not ids:
        return []
    return _claim(
        OutboxMessage.id.in_(ids) & (OutboxMessage.status == "pending") & (OutboxMessage.tries == 0), now, len(ids)
    )


def claim_due(now: datetime, limit: int = 100) -> list[Outgoing]:
    """The retry job's claim: rows whose next try is due."""
    return _claim((OutboxMessage.status == "pending") & (OutboxMessage.next_try_at <= now), now, limit)


def release_stale_claims(now: datetime) -> int:
    """A row claimed longer ago than the claim timeout belongs to a sender that
    died (the process stopped mid-send): it is tried again, or failed if that
    was its last try."""
    cutoff = now - timedelta(seconds=current_app.config["RECOVERY_OUTBOX_CLAIM_TIMEOUT_SECONDS"])
    return core_execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < cutoff)
        .values(
            status=case((OutboxMessage.tries >= MAX_TRIES, "failed"), else_="pending"),
            claim_token=None,
            next_try_at=now,
            last_error="the sender stopped before it finished",
        )
    ).rowcount


# --- recording what happened ------------------------------------------------------------


def backoff(tries: int) -> timedelta:
    """Exponential: 1, 2, 4, 8… minutes after each failed try."""
    return timedelta(minutes=2 ** max(tries - 1, 0))


def masked(text: str) -> str:
    return _CODE_LIKE.sub(MASK, text)


def _text_kept(outgoing: Outgoing, keeps_text: bool) -> dict:
    # A code that has left (or never will) is no longer needed by anyone here.
    if outgoing.channel in CODE_CHANNELS and not keeps_text:
        return {"body": masked(outgoing.body)}
    # An e-mail keeps the text it was sent with, written after it was queued.
    return {"subject": outgoing.subject, "body": outgoing.body}


def _settle(outgoing: Outgoing, **values) -> bool:
    """Write the outcome if the row is still ours (a claim released as stale
    and taken by another sender is no longer ours to settle)."""
    return (
        core_execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == outgoing.id,
                OutboxMessage.status == "sending",
                OutboxMessage.claim_token == outgoing.claim_token,
            )
            .values(claim_token=None, **values)
        ).rowcount
        == 1
    )


def record_sent(outgoing: Outgoing, now: datetime, *, provider_id: str | None, keeps_text: bool) -> bool:
    return _settle(
        outgoing,
        status="sent",
        sent_at=now,
        provider_id=(provider_id or None) and provider_id[:64],
        **_text_kept(outgoing, keeps_text),
    )


def record_failure(outgoing: Outgoing, now: datetime, error: str, *, permanent: bool) -> str:
    """``retry`` (back to pending after the backoff) or ``failed`` (the last try, or hopeless)."""
    if permanent or outgoing.tries >= MAX_TRIES:
        _settle(outgoing, status="failed", last_error=error[:1000], **_text_kept(outgoing, False))
        return "failed"
    _settle(outgoing, status="pending", last_error=error[:1000], next_try_at=now + backoff(outgoing.tries))
    return "retry"


def code_expired(outgoing: Outgoing, now: datetime) -> bool:
    """A code retried after it stopped working would only confuse."""
    ttl = timedelta(minutes=current_app.config["RECOVERY_CODE_TTL_MINUTES"])
    return outgoing.channel in CODE_CHANNELS and now - outgoing.created_at >= ttl


def retry(message_id: int, now: datetime) -> bool:
    """An operator puts a failed message back: it goes again with every try it had."""
    return (
        core_execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == "failed")
            .values(status="pending", tries=0, next_try_at=now, claim_token=None)
        ).rowcount
        == 1
    )


# --- delivery reports ---------------------------------------------------------------------


def record_delivery_report(provider_id: str, status: str, error_code: str | None, now: datetime) -> bool:
    """The provider says what became of a message. A late "sent" never
    overwrites a "delivered" or "undelivered" that arrived first."""
    status = status.strip().lower()[:20]
    condition = OutboxMessage.provider_id == provider_id
    if status not in FINAL_REPORTS:
        condition &= OutboxMessage.delivery_status.is_(None) | OutboxMessage.delivery_status.not_in(FINAL_REPORTS)
    return (
        core_execute(
            update(OutboxMessage)
            .where(condition)
            .values(
                delivery_status=status,
                delivery_error=(error_code or None) and error_code[:200],
                delivery_reported_at=now,
            )
        ).rowcount
        == 1
    )


def code_trouble(to: str, since: datetime) -> tuple[str, str] | None:
    """What went wrong with the newest code sent to ``to`` since ``since``, as
    (problem, channel): ``undelivered`` (the provider took it, the phone did
    not get it) or ``failing`` (we could not hand it to the provider); None if
    nothing is known to have gone wrong."""
    latest = db.session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, OutboxMessage.last_error, OutboxMessage.delivery_status)
        .where(OutboxMessage.to == to, OutboxMessage.channel.in_(CODE_CHANNELS), OutboxMessage.created_at >= since)
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    if latest.delivery_status in NOT_DELIVERED:
        return "undelivered", latest.channel
    if latest.status == "failed" or (latest.status in ("pending", "sending") and latest.last_error):
        return "failing", latest.channel
    return None


# --- for managers --------------------------------------------------------------------------


def outbox_counts() -> dict[str, int]:
    """Messages waiting (pending or being sent) and failed, for /healthz and the reports."""
    counts = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.status.in_(("pending", "sending", "failed")))
            .group_by(OutboxMessage.status)
        ).all()
    )
    return {"pending": counts.get("pending", 0) + counts.get("sending", 0), "failed": counts.get("failed", 0)}
