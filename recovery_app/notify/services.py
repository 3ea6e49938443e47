"""Queueing and delivering messages through the outbox."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import render_template
from flask_babel import force_locale
from sqlalchemy import select

from ..extensions import db
from ..models import OutboxMessage
from .senders import SendError, get_sender

MAX_TRIES = 6
_CODE_LIKE = re.compile(r"(?<!\d)\d{6}(?!\d)")


def queue_email(to: str, template: str, locale: str, now: datetime, **context) -> OutboxMessage:
    """Render ``templates/<template>.txt`` (``auth/email/new_device``, say) in the
    recipient's language and queue it.

    The first line of the rendered template is the subject, the rest the body.
    """
    if "code" in context:
        raise ValueError("codes are never sent by e-mail")
    with force_locale(locale):
        rendered = render_template(f"{template}.txt", **context).strip()
    subject, _, body = rendered.partition("\n")
    message = OutboxMessage(
        channel="email",
        to=to,
        template=template,
        locale=locale,
        subject=subject.strip(),
        body=body.strip() + "\n",
        payload={},
        status="pending",
        tries=0,
        next_try_at=now,
        created_at=now,
    )
    db.session.add(message)
    return message


def queue_code(channel: str, to_e164: str, code: str, locale: str, now: datetime) -> OutboxMessage:
    """Queue a one-time code by SMS or voice call (never e-mail)."""
    if channel not in ("sms", "voice"):
        raise ValueError("codes go by sms or voice only")
    template = f"code_{channel}"
    with force_locale(locale):
        body = render_template(f"notify/{template}.txt", code=code, spoken=" ".join(code)).strip()
    message = OutboxMessage(
        channel=channel,
        to=to_e164,
        template=template,
        locale=locale,
        subject="",
        body=body + "\n",
        payload={},
        status="pending",
        tries=0,
        next_try_at=now,
        created_at=now,
    )
    db.session.add(message)
    return message


def backoff(tries: int) -> timedelta:
    """Exponential: 1, 2, 4, 8… minutes after each failed try."""
    return timedelta(minutes=2 ** max(tries - 1, 0))


def deliver_due(now: datetime, limit: int = 100) -> dict:
    """Send the pending messages that are due; a message that keeps failing is marked failed."""
    sender = get_sender()
    rows = (
        db.session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_try_at <= now)
            .order_by(OutboxMessage.next_try_at, OutboxMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    sent = failed = retried = 0
    for message in rows:
        message.tries += 1
        try:
            sender.send(message)
        except SendError as exc:
            message.last_error = str(exc)[:1000]
            if message.tries >= MAX_TRIES:
                message.status = "failed"
                failed += 1
            else:
                message.next_try_at = now + backoff(message.tries)
                retried += 1
            continue
        message.status = "sent"
        message.sent_at = now
        if message.channel in ("sms", "voice") and not getattr(sender, "keeps_text", False):
            # The code has left; the copy kept here is no longer needed by anyone.
            message.body = _CODE_LIKE.sub("••••••", message.body)
        sent += 1
    return {"sent": sent, "retried": retried, "failed": failed}
