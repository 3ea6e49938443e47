"""The one kind of error a rule raises when it refuses what was asked.

Services raise a ``DomainError`` (or a feature's subclass of it) with a
translatable message; views put it on the form with ``forms.put_on_form`` or
show it on the page. The message stays lazy, so it is rendered in the language
of whoever reads it.
"""

from __future__ import annotations


class DomainError(Exception):
    """``message`` says why (``values`` fill its placeholders); ``field`` names
    the form field it belongs to, if one."""

    def __init__(self, message, *, field: str | None = None, **values):
        super().__init__(message)
        self.message = message
        self.field = field
        self.values = values

    def __str__(self) -> str:
        return str(self.message) % self.values if self.values else str(self.message)
