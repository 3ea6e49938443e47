"""Fixtures for the attack tests: English browsers, a snapshot of every
table (so a test can say "nothing changed"), and one signed-in browser per role."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from recovery_app.extensions import db as _db
from tests.auth.conftest import english_browser, roomy_limits  # noqa: F401

ROLES = ("seller_owner", "seller_user", "reviewer", "manager")


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
        return auth.client_for(user, fresh_code=True), user

    return sign_in
