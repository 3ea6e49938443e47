"""Fixtures for the account pages."""

from __future__ import annotations

import re

import pytest

from tests.helpers import outbox_messages

# Where the sign-in pages send people; the account pages redirect there.
SIGN_IN_PATH = "/sign-in"


def link_in_last_email(to: str, path_prefix: str) -> str:
    """The path of the newest link to ``path_prefix`` e-mailed to ``to``."""
    for message in reversed(outbox_messages("email", to)):
        found = re.search(r"https?://[^/\s]+(" + re.escape(path_prefix) + r"[A-Za-z0-9_\-]+)", message.body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {path_prefix} link was e-mailed to {to}")


@pytest.fixture
def owner(make):
    return make.user("seller_owner", locale="en")


@pytest.fixture
def signed_in_owner(client, auth, owner):
    auth.fast_sign_in(client, owner)
    return owner
