"""Senders hand one outbox message to the outside world.

The development sender keeps messages in the outbox table, where
``flask outbox list`` and the tests read them. A real SMS, voice or mail
provider implements the same ``send`` and is chosen with
``RECOVERY_SENDER=module:Class``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from flask import current_app

from ..models import OutboxMessage


class SendError(RuntimeError):
    """A temporary failure: the message will be tried again later."""


class Sender(Protocol):
    def send(self, message: OutboxMessage) -> None: ...


class OutboxOnlySender:
    """Delivers nowhere: the outbox row itself is the delivered message, so it
    keeps its text (``flask outbox list`` shows codes in development)."""

    keeps_text = True

    def send(self, message: OutboxMessage) -> None:
        return None


def get_sender() -> Sender:
    spec = current_app.config.get("RECOVERY_SENDER")
    if not spec:
        return OutboxOnlySender()
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
