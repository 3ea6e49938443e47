"""Argon2 hashes run with no transaction open: no snapshot, lock or pooled
connection is held for their length (``database.slow_work_then_write``)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from recovery_app import database
from recovery_app.auth import services, twofactor
from recovery_app.extensions import db
from recovery_app.models import Account, User
from recovery_app.models.base import utcnow
from tests.helpers import TEST_PASSWORD
from tests.served import sellers


def _watching(monkeypatch, module, name: str) -> list[tuple[bool, int]]:
    """Calls of ``module.name`` go on as before; each notes whether this
    request's session was in a transaction, and how many pooled connections
    were out, while it ran."""
    seen = []
    real = getattr(module, name)

    def watched(*args, **kwargs):
        seen.append((db.session().in_transaction(), db.engine.pool.checkedout()))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, watched)
    return seen


@pytest.mark.parametrize(
    ("which", "password", "lands_on"),
    [
        ("known", TEST_PASSWORD, "/sign-in/code"),
        ("known", "not the password at all", None),
        ("unknown", TEST_PASSWORD, None),
    ],
    ids=["right password", "wrong password", "unknown address"],
)
def test_the_password_is_hashed_with_no_transaction_or_connection_held(
    live_app, monkeypatch, which, password, lands_on
):
    ((email, _seed),) = sellers(live_app, 1)
    seen = _watching(monkeypatch, services, "verify_password")
    client = live_app.test_client()
    response = client.post(
        "/sign-in",
        data={"email": email if which == "known" else "nobody@example.test", "password": password},
        headers={"Accept-Language": "en"},
    )
    assert seen == [(False, 0)]
    if lands_on:
        assert response.status_code == 302 and response.headers["Location"].endswith(lands_on)
    else:
        assert response.status_code == 200 and "do not match" in response.get_data(as_text=True)
    with live_app.app_context():  # what came after the hash was written and committed as before
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        assert user.failed_password_count == (1 if which == "known" and lands_on is None else 0)


def test_new_recovery_codes_are_hashed_outside_the_transaction(client, auth, make, db, monkeypatch):
    user = make.user()
    codes = twofactor.generate_recovery_codes(user, utcnow())
    auth.sign_in(client, user)
    auth.fresh_code(client)
    seen = _watching(monkeypatch, twofactor, "hash_password")
    response = client.post("/settings/security/recovery-codes")
    assert response.status_code == 200 and 'id="recovery-codes"' in response.get_data(as_text=True)
    assert [in_transaction for in_transaction, _ in seen] == [False] * 10
    assert twofactor.remaining_recovery_codes(user) == 10
    assert not twofactor.use_recovery_code(user, codes[0], utcnow())  # replaced, in the same unit


def test_using_the_database_during_slow_work_is_refused_before_any_lock_is_taken(live_app, backend, tmp_path):
    with live_app.app_context():
        with database.unit(write=False):
            db.session.execute(select(Account.id)).all()  # the unit's reads
            with pytest.raises(RuntimeError, match="slow_work_then_write"):
                with database.slow_work_then_write():
                    db.session.execute(select(Account.id)).all()
            if backend == "sqlite":  # refused before BEGIN IMMEDIATE: another writer gets the lock at once
                other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                other.close()
            db.session.rollback()
            db.session.add(Account(name="Written after the slow work", created_at=utcnow()))
        db.session.remove()
        with database.unit(write=False):
            names = db.session.execute(select(Account.name)).scalars().all()
    assert "Written after the slow work" in names  # the unit went on as a writer and committed
