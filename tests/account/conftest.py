"""Fixtures for the account pages."""

from __future__ import annotations

import re

import pytest
from flask import g

from tests.conftest import outbox_messages

# Where the sign-in pages send people; the account pages redirect there.
SIGN_IN_PATH = "/sign-in"


@pytest.fixture(autouse=True)
def sign_in_endpoints(app):
    """The account pages link to ``auth.sign_in`` and ``auth.confirm``. Until the
    auth blueprint serves them, stand-ins answer so redirects can be followed."""
    for endpoint, rule in (("auth.sign_in", SIGN_IN_PATH), ("auth.confirm", "/settings/confirm")):
        if endpoint not in app.view_functions:
            app.add_url_rule(rule, endpoint=endpoint, view_func=lambda: "stand-in")
    return app


def link_in_last_email(to: str, path_prefix: str) -> str:
    """The path of the newest link to ``path_prefix`` e-mailed to ``to``."""
    for message in reversed(outbox_messages("email", to)):
        found = re.search(r"https?://[^/\s]+(" + re.escape(path_prefix) + r"[A-Za-z0-9_\-]+)", message.body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {path_prefix} link was e-mailed to {to}")


@pytest.fixture(autouse=True)
def request_globals_start_empty(app):
    """Each request starts with an empty ``g``, as it does under a real server.

    The ``app`` fixture keeps one application context open for the whole test,
    and Flask reuses it for every test-client request, so ``g`` (where
    Flask-Login keeps the current user and Flask-Babel the locale) would carry
    one request's user over to the next client's request."""

    def forget_previous_request():
        g.__dict__.clear()

    app.before_request_funcs.setdefault(None, []).insert(0, forget_previous_request)
    return app


@pytest.fixture
def owner(make):
    return make.user("seller_owner", locale="en")


@pytest.fixture
def signed_in_owner(client, auth, owner):
    auth.sign_in(client, owner)
    return owner
