"""Fixtures for the attack tests: the real sign-in forms, a snapshot of every
table (so a test can say "nothing changed"), and one signed-in browser per role."""

from __future__ import annotations

import pytest
from flask import g, request_started
from sqlalchemy import select

from recovery_app.extensions import db as _db
from tests.auth.conftest import (  # noqa: F401
    Forms,
    add_phone,
    english_browser,
    forms,
    roomy_limits,
)

ROLES = ("seller_owner", "seller_user", "reviewer", "manager")


@pytest.fixture(autouse=True)
def each_request_starts_empty(app):
    """Each request starts with an empty ``g`` (Flask-Login's user, Flask-Babel's
    locale), as under a real server, though the test keeps one app context open.
    A signal, not ``before_request``: it can be added to an app that already served."""

    def forget(sender, **extra):
        g.__dict__.clear()

    request_started.connect(forget, app)
    yield
    request_started.disconnect(forget, app)


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: compare two to prove nothing changed."""
    _db.session.flush()
    rows = {}
    for table in _db.metadata.sorted_tables:
        result = _db.session.execute(select(table)).all()
        rows[table.name] = sorted(tuple(repr(v) for v in row) for row in result)
    return rows


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


@pytest.fixture
def signed_in(app, make, auth):
    """signed_in(role) -> (client, user): a full session with a fresh code, as after the confirm page."""

    def sign_in(role: str):
        user = make.user(role, locale="en")
        client = app.test_client()
        auth.sign_in(client, user)
        auth.fresh_code(client)
        return client, user

    return sign_in
