"""Sending: the edge where outbox rows meet their senders.

Right after a request (or job, or command) commits, the rows it queued are
handed to a small pool of threads in the same process, which claims each row,
sends it, and records the outcome. The request never waits for a provider and
never fails because of one: whatever is not sent stays in the outbox for the
retry job (``deliver_due``), which uses the same claim, so nothing goes twice.

Each step is its own short transaction (claim, then send with no transaction
open, then record), so no database lock is held while talking to a provider.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from flask import current_app, has_app_context
from sqlalchemy.exc import InterfaceError, OperationalError

from ..database import on_commit, on_rollback, unit
from ..extensions import db
from ..models.base import utcnow
from . import services
from .senders import PermanentSendError, SendError, get_sender

_QUEUED = "outbox_queued"
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


# --- after the commit ------------------------------------------------------------------


def hand_over_after_commit(message_id: int) -> None:
    """Send the queued message ``message_id`` once the unit that queued it has
    committed (nothing, if it rolls back)."""
    info = db.session.info
    queued = info.get(_QUEUED)
    if queued is None:
        queued = info[_QUEUED] = []
        on_commit(lambda: _hand_over(info.pop(_QUEUED, [])))
        on_rollback(lambda: info.pop(_QUEUED, None))
    queued.append(message_id)


def _hand_over(ids: list[int]) -> None:
    # Runs in the session's after_commit hook: no SQL may be issued here.
    if ids and has_app_context() and current_app.config["RECOVERY_SEND_AFTER_COMMIT"]:
        hand_over(current_app._get_current_object(), ids)


def hand_over(app, ids: list[int]) -> None:
    try:
        _executor().submit(_send_in_background, app, ids)
    except RuntimeError:  # the process is shutting down: the retry job sends them
        app.logger.warning("outbox: %d message(s) left for the retry job", len(ids))


def _executor() -> ThreadPoolExecutor:
    """One pool per process (a forked gunicorn worker makes its own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox")
            _pool_pid = os.getpid()
        return _pool


def _send_in_background(app, ids: list[int]) -> None:
    with app.app_context():
        try:
            send_now(ids, utcnow())
        except Exception:  # noqa: BLE001 - the rows stay pending; the retry job has them
            app.logger.exception("outbox: immediate send failed; left for the retry job")
        finally:
            db.session.remove()


# --- the two ways in ---------------------------------------------------------------------


def send_now(ids: list[int], now: datetime) -> dict:
    """Send rows just queued, if nobody else has claimed them."""
    with unit():
        claimed = services.claim_new(ids, now)
    return _deliver(claimed, now)


def deliver_due(now: datetime, limit: int = 100, batch: int = 10) -> dict:
    """The retry job: take back claims whose sender died, then send what is due,
    claiming a few at a time (a long batch behind a slow provider would outlive
    its claims)."""
    with unit():
        released = services.release_stale_claims(now)
    result = {"sent": 0, "retried": 0, "failed": 0}
    handled = 0
    while handled < limit:
        with unit():
            claimed = services.claim_due(now, min(batch, limit - handled))
        if not claimed:
            break
        handled += len(claimed)
        for key, value in _deliver(claimed, now).items():
            result[key] += value
    if released:
        result["released"] = released
    return result


def _deliver(claimed: list[services.Outgoing], now: datetime) -> dict:
    result = {"sent": 0, "retried": 0, "failed": 0}
    senders: dict = {}
    for outgoing in claimed:
        if services.code_expired(outgoing, now):
            with unit():
                services.record_failure(outgoing, now, "the code expired before it could be sent", permanent=True)
            result["failed"] += 1
            continue
        try:
            outgoing = services.written(outgoing)
        except Exception:  # noqa: BLE001 - a template that cannot be written will not be written next time either
            current_app.logger.exception("outbox: message %s (%s) could not be written", outgoing.id, outgoing.template)
            with unit():
                services.record_failure(
                    outgoing, now, "the message could not be written from its template", permanent=True
                )
            result["failed"] += 1
            continue
        sender = senders.get(outgoing.channel)
        if sender is None:
            sender = senders[outgoing.channel] = get_sender(outgoing.channel)
        try:
            provider_id = sender.send(outgoing)
        except SendError as exc:
            error, permanent = str(exc), isinstance(exc, PermanentSendError)
        except Exception as exc:  # noqa: BLE001 - a broken sender must not leave the row claimed
            current_app.logger.exception("outbox: sender %s crashed on message %s", type(sender).__name__, outgoing.id)
            error, permanent = f"{type(exc).__name__} in the sender", False
        else:
            _record_sent(outgoing, now, provider_id, keeps_text=getattr(sender, "keeps_text", False))
            result["sent"] += 1
            continue
        with unit():
            outcome = services.record_failure(outgoing, now, error, permanent=permanent)
        result["failed" if outcome == "failed" else "retried"] += 1
        current_app.logger.warning("outbox: message %s (%s) not sent: %s", outgoing.id, outgoing.channel, error)
    return result


def _record_sent(outgoing: services.Outgoing, now: datetime, provider_id: str | None, *, keeps_text: bool) -> None:
    """Record that the provider took the message, waiting out a database that
    is away for a moment: a row left claimed would be sent a second time once
    its claim times out. Gives up (and raises) after
    ``RECOVERY_OUTBOX_RECORD_SECONDS``; what follows in the batch then waits
    for the retry job instead of going out unrecorded too."""
    deadline = time.monotonic() + current_app.config["RECOVERY_OUTBOX_RECORD_SECONDS"]
    pause = 0.1
    while True:
        try:
            with unit():
                services.record_sent(outgoing, now, provider_id=provider_id, keeps_text=keeps_text)
            return
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + pause > deadline:
                current_app.logger.error(
                    "outbox: message %s was sent but could not be recorded (%s); the retry job may send it again",
                    outgoing.id,
                    type(exc.orig).__name__,
                )
                raise
            current_app.logger.warning(
                "outbox: message %s was sent; the database did not take the record (%s), trying again",
                outgoing.id,
                type(exc.orig).__name__,
            )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
