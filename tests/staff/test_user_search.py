"""The managers' user search: find anyone by e-mail, end all their sessions
(ASVS 7.4.5), audited; nobody else reaches it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from recovery_app.models import AuditEvent
from tests.staff.conftest import alive, other_browser


def test_manager_finds_users_by_e_mail_and_ends_all_their_sessions(app, db, client, auth, make, manager):
    # ASVS 7.4.5, 16.2.1: audited with who, what, when, where
    seller = make.user(email="tanaka.ichiro@example.test")
    make.user(email="someone.else@example.test")
    browser, row = other_browser(app, auth, seller)
    half_way = app.test_client()
    auth.fast_password_step(half_way, seller)
    page = client.get("/staff/users?q=TANAKA", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "tanaka.ichiro@example.test" in page and "someone.else@example.test" not in page
    epoch = seller.session_epoch
    response = client.post(f"/staff/users/{seller.id}/end-sessions?q=tanaka", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/users?q=tanaka")
    db.session.refresh(seller)
    db.session.refresh(row)
    assert seller.session_epoch == epoch + 1 and row.end_reason == "ended_by_staff"
    assert not alive(browser)
    audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "user.sessions_ended")).scalar_one()
    assert (audit.actor_id, audit.subject_id, audit.address) == (manager.id, str(seller.id), "192.0.2.9")
    assert audit.details == {"sessions_ended": 1}


def test_staff_search_treats_wildcards_as_text(client, make, manager):
    make.user(email="percent@example.test")
    page = client.get("/staff/users?q=%25", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "percent@example.test" not in page and "No user matches" in page


def test_staff_search_with_an_over_long_query_is_a_clear_400(client, manager):
    response = client.get("/staff/users?q=" + "a" * 300, headers={"Accept-Language": "en"})
    assert response.status_code == 400 and "at most 254" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["seller_owner", "seller_user", "reviewer"])
def test_only_managers_reach_the_staff_users_page(app, db, auth, make, role):
    target = make.user()
    _, row = other_browser(app, auth, target)
    browser = app.test_client()
    auth.fast_sign_in(browser, make.user(role))
    assert browser.get("/staff/users").status_code == 404
    assert browser.post(f"/staff/users/{target.id}/end-sessions").status_code == 404
    db.session.refresh(row)
    assert row.ended_at is None


def test_ending_sessions_of_an_unknown_user_is_404(client, manager):
    assert client.post("/staff/users/999999/end-sessions").status_code == 404


def test_staff_end_sessions_without_csrf_token_changes_nothing(app, db, client, auth, make, manager):
    target = make.user()
    _, row = other_browser(app, auth, target)
    assert client.post(f"/staff/users/{target.id}/end-sessions", csrf=False).status_code == 400
    db.session.refresh(row)
    assert row.ended_at is None
