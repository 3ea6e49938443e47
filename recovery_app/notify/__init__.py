"""Outgoing messages. Everything goes through the outbox table first.

``queue_email`` and ``queue_code`` are the only ways to send anything. E-mail
carries notices only: a code is never sent by e-mail (a taken-over mailbox
must not be enough to pass the second step).
"""

from .services import deliver_due, queue_code, queue_email

__all__ = ["deliver_due", "queue_code", "queue_email"]
