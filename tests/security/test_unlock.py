"""The hard lock after 100 consecutive failures is lifted by a manager from the
staff users page (NIST SP 800-63B 5.2.2), audited; nobody else can."""

from __future__ import annotations

from sqlalchemy import select

from recovery_app.models import AuditEvent
from tests.helpers import TEST_PASSWORD, later
from tests.security.conftest import changed_tables, snapshot


def locked_user(make, now):
    user = make.user(locale="en", email="locked.person@example.test")
    user.password_changed_at = later(now, days=-30)
    user.hard_locked_at = now
    user.consecutive_failures = 100
    return user


def test_a_manager_unlocks_a_hard_locked_user_and_it_is_audited(app, client, make, auth, now, db):
    user = locked_user(make, now)
    manager = make.user("manager", locale="en")
    auth.fast_sign_in(client, manager)
    page = client.get("/staff/users?q=locked.person").get_data(as_text=True)
    assert "Locked after too many failed attempts" in page and f"/staff/users/{user.id}/unlock" in page
    response = client.post(f"/staff/users/{user.id}/unlock")
    assert response.status_code == 302
    assert user.hard_locked_at is None and user.consecutive_failures == 0
    [entry] = db.session.execute(select(AuditEvent).where(AuditEvent.action == "user.unlocked")).scalars().all()
    assert entry.actor_id == manager.id and entry.subject_id == str(user.id)
    browser = app.test_client()
    assert auth.password(browser, user, password=TEST_PASSWORD).headers["Location"].endswith("/sign-in/code")


def test_only_managers_can_unlock(app, make, auth, now):
    user = locked_user(make, now)
    for role in ("seller_owner", "seller_user", "reviewer"):
        client = app.test_client()
        auth.fast_sign_in(client, make.user(role))
        before = snapshot()
        assert client.post(f"/staff/users/{user.id}/unlock").status_code == 404, role
        assert changed_tables(before, snapshot()) == []
    assert user.hard_locked_at is not None


def test_unlocking_an_unknown_user_or_without_a_token_changes_nothing(client, make, auth, now):
    user = locked_user(make, now)
    auth.fast_sign_in(client, make.user("manager"))
    before = snapshot()
    assert client.post("/staff/users/999999999/unlock").status_code == 404
    assert client.post(f"/staff/users/{user.id}/unlock", csrf=False).status_code == 400
    assert changed_tables(before, snapshot()) == []


def test_unlocking_again_says_there_was_nothing_to_lift_and_writes_nothing(client, make, auth, now):
    user = locked_user(make, now)
    auth.fast_sign_in(client, make.user("manager", locale="en"))
    assert client.post(f"/staff/users/{user.id}/unlock").status_code == 302
    before = snapshot()
    response = client.post(f"/staff/users/{user.id}/unlock", follow_redirects=True)
    assert "locked.person@example.test was not locked out. Nothing was changed." in response.get_data(as_text=True)
    assert changed_tables(before, snapshot()) == []
