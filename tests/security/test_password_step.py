"""The password step lives server-side: signing out, a new password or "end
other sessions" ends every copy of its cookie (ASVS 7.4.1, 7.4.3)."""

from __future__ import annotations

from sqlalchemy import select

from recovery_app.account import services as account_services
from recovery_app.models import PasswordStep
from recovery_app.models.base import utcnow
from tests.helpers import TEST_PASSWORD


def _copy_of_cookie(app, client):
    name = app.config["SESSION_COOKIE_NAME"]
    value = client.get_cookie(name).value
    thief = app.test_client()
    thief.set_cookie(name, value)
    return thief


def _opens_recovery(client) -> bool:
    return client.get("/recovery/").status_code == 200


def test_a_copied_password_step_cookie_dies_at_sign_out(app, client, make, auth):
    user = make.user()
    auth.password(client, user)
    thief = _copy_of_cookie(app, client)
    assert _opens_recovery(thief)
    client.post("/sign-out")
    assert not _opens_recovery(thief)


def test_a_new_password_ends_every_password_step_made_with_the_old_one(app, client, make, auth, db):
    user = make.user()
    auth.password(client, user)
    thief = _copy_of_cookie(app, client)
    assert _opens_recovery(thief)
    account_services.change_password(
        user,
        TEST_PASSWORD,
        "a brand new passphrase 7310",
        "a brand new passphrase 7310",
        utcnow(),
        address=None,
        browser=None,
    )
    db.session.flush()
    assert not _opens_recovery(thief)
    assert not _opens_recovery(client)


def test_ending_other_sessions_ends_password_steps_elsewhere(app, client, make, auth, db):
    user = make.user()
    stranger = app.test_client()
    auth.password(stranger, user)
    assert _opens_recovery(stranger)
    row = auth.fast_sign_in(client, user)
    account_services.end_other_sessions(user, row, utcnow(), address=None, browser=None)
    db.session.flush()
    assert not _opens_recovery(stranger)


def test_the_step_row_is_ended_when_the_second_step_passes(client, make, auth, db):
    user = make.user()
    auth.sign_in(client, user)
    steps = db.session.execute(select(PasswordStep).where(PasswordStep.user_id == user.id)).scalars().all()
    assert [(step.ended_at is not None, step.end_reason) for step in steps] == [(True, "completed")]
