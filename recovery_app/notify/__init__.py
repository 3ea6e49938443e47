"""Outgoing messages. Everything goes through the outbox table first.

``queue_email`` (``queue_emails`` for a batch) and ``queue_code`` are the only
ways to send anything: the
row is the record and the retry path, and it is handed to its sender right
after the transaction that queued it commits (``delivery``). E-mail carries
notices only: a code is never sent by e-mail (a taken-over mailbox must not be
enough to pass the second step).
"""

from .delivery import deliver_due, send_now
from .services import Email, code_trouble, outbox_counts, queue_code, queue_email, queue_emails

__all__ = [
    "Email",
    "code_trouble",
    "deliver_due",
    "outbox_counts",
    "queue_code",
    "queue_email",
    "queue_emails",
    "send_now",
]
