"""The staff list and role changes (moved from the reports, behaviour unchanged)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from recovery_app.models import AuditEvent, User


def test_manager_changes_a_reviewer_into_a_manager(manager_client, make, db):
    reviewer = make.user("reviewer", display_name="Rae")
    epoch = reviewer.session_epoch
    response = manager_client.post(
        f"/staff/{reviewer.id}/role", data={"role": "manager"}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 302
    db.session.refresh(reviewer)
    assert reviewer.role == "manager" and reviewer.session_epoch == epoch + 1
    [audit] = db.session.execute(select(AuditEvent).where(AuditEvent.action == "user.role_changed")).scalars()
    assert audit.details == {"from": "reviewer", "to": "manager"} and audit.actor_id == manager_client.manager.id
    page = manager_client.get("/staff/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Rae is now a Manager" in page


@pytest.mark.parametrize("case", ["self", "seller", "missing", "bad_role", "same_role", "no_csrf"])
def test_role_changes_that_are_refused_change_nothing(manager_client, make, db, case):
    reviewer = make.user("reviewer")
    seller = make.user("seller_owner")
    target, data, csrf = reviewer.id, {"role": "manager"}, True
    if case == "self":
        target = manager_client.manager.id
        data = {"role": "reviewer"}
    elif case == "seller":
        target = seller.id
    elif case == "missing":
        target = 999999
    elif case == "bad_role":
        data = {"role": "seller_owner"}
    elif case == "same_role":
        data = {"role": "reviewer"}
    elif case == "no_csrf":
        csrf = False
    before = {u.id: (u.role, u.session_epoch) for u in db.session.execute(select(User)).scalars()}
    response = manager_client.post(f"/staff/{target}/role", data=data, csrf=csrf, headers={"Accept-Language": "en"})
    assert response.status_code in (302, 400)
    db.session.expire_all()
    assert {u.id: (u.role, u.session_epoch) for u in db.session.execute(select(User)).scalars()} == before
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "user.role_changed")).first() is None
    if response.status_code == 302:
        page = manager_client.get("/staff/", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert "flash-error" in page


def test_staff_list_shows_staff_only(manager_client, make):
    reviewer = make.user("reviewer", display_name="Rae")
    seller = make.user("seller_owner", display_name="Sal")
    html = manager_client.get("/staff/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert reviewer.email in html and seller.email not in html


@pytest.mark.parametrize(
    "language, words",
    [
        (
            "en",
            ("Staff and roles", "Find a user", "Invite a reviewer or manager", "2-step verification not set up yet"),
        ),
        ("ja", ("スタッフと役割", "ユーザー検索", "審査担当者・マネージャーを招待する", "2段階認証は未設定")),
    ],
)
def test_staff_pages_speak_japanese_and_english(app, auth, make, language, words):
    make.user("reviewer", enrolled=False)  # joined, has not set up 2SV yet
    client = app.test_client()
    auth.fast_sign_in(client, make.user("manager", locale=language))
    page = client.get("/staff/", headers={"Accept-Language": language}).get_data(as_text=True)
    assert all(word in page for word in words), [word for word in words if word not in page]
    search = client.get("/staff/users", headers={"Accept-Language": language}).get_data(as_text=True)
    assert words[1] in search and 'aria-current="page"' in search
