"""Changing one's own password (giving the current one) and e-mail address."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from recovery_app.auth.passwords import verify_password
from recovery_app.models import ActionToken, SecurityEvent
from tests.account.conftest import SIGN_IN_PATH, link_in_last_email
from tests.helpers import TEST_PASSWORD, outbox_messages

NEW_PASSWORD = "quiet lantern orchard 9107"


@pytest.fixture
def me(client, auth, make):
    user = make.user(locale="en", email="sato.hanako@example.test")
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    return user


def _change_password(client, current=TEST_PASSWORD, password=NEW_PASSWORD, confirm=None, **kwargs):
    return client.post(
        "/account/password",
        data={"current_password": current, "password": password, "confirm": password if confirm is None else confirm},
        headers={"Accept-Language": "en"},
        **kwargs,
    )


def test_change_password_with_the_current_one_then_offer_to_end_other_sessions(db, client, me):
    # ASVS 6.2.2, 6.2.3, 7.4.3
    page = client.get("/account/password").get_data(as_text=True)
    assert 'autocomplete="current-password"' in page and 'autocomplete="new-password"' in page
    assert 'type="password"' in page
    epoch = me.session_epoch
    response = _change_password(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/sessions?after=password")
    db.session.refresh(me)
    assert verify_password(me.password_hash, NEW_PASSWORD)
    assert me.session_epoch == epoch  # this session goes on; ending the others is offered
    assert outbox_messages("email", me.email)[-1].template == "account/email/password_changed"
    assert db.session.execute(select(SecurityEvent).where(SecurityEvent.kind == "password_changed")).scalar_one()


def test_change_password_refuses_a_wrong_current_password(db, client, me):
    response = _change_password(client, current="not my password at all")
    assert response.status_code == 400 and "not your current password" in response.get_data(as_text=True)
    db.session.refresh(me)
    assert verify_password(me.password_hash, TEST_PASSWORD)
    assert outbox_messages("email") == []


@pytest.mark.parametrize(
    "password, confirm, message",
    [
        ("short pw 1", None, "at least 12 characters"),
        ("qwerty123456", None, "leaked passwords"),
        ("sato.hanako is me", None, "e-mail address"),
        ("z" * 5000, None, "at most 256 characters"),
        (TEST_PASSWORD, None, "same as the current one"),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "not the same"),
    ],
)
def test_change_password_refuses_bad_new_passwords(db, client, me, password, confirm, message):
    response = _change_password(client, password=password, confirm=confirm)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.refresh(me)
    assert verify_password(me.password_hash, TEST_PASSWORD)


def test_change_password_with_an_over_long_current_password_is_a_clear_error(db, client, me):
    response = _change_password(client, current="c" * 100_000)
    assert response.status_code == 400
    db.session.refresh(me)
    assert verify_password(me.password_hash, TEST_PASSWORD)


def test_change_password_without_csrf_token_changes_nothing(db, client, me):
    assert _change_password(client, csrf=False).status_code == 400
    db.session.refresh(me)
    assert verify_password(me.password_hash, TEST_PASSWORD)


def test_change_password_is_rate_limited_per_user(app, client, me):
    # ASVS 6.3.1: guessing the current password from a hijacked session is slowed
    app.config["RECOVERY_PASSWORD_CHANGE_LIMIT"] = "3 per hour"
    codes = [_change_password(client, current=f"wrong guess number {n}").status_code for n in range(4)]
    assert codes == [400, 400, 400, 429]


def test_password_and_e_mail_pages_ask_for_a_fresh_code_first(app, db, client, auth, make):
    # ASVS 7.5.1
    from flask import url_for

    with app.test_request_context():
        confirm = url_for("auth.confirm")
    user = make.user()
    auth.fast_sign_in(client, user)
    for path in ("/account/password", "/account/email", "/account/sessions"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith(confirm)
    for path, data in (
        ("/account/email", {"email": "new@example.test"}),
        ("/account/sessions/end", {"scope": "others"}),
        ("/account/password", {"current_password": TEST_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 302 and response.headers["Location"].startswith(confirm)
    db.session.refresh(user)
    assert verify_password(user.password_hash, TEST_PASSWORD) and user.session_epoch == 0
    assert user.email != "new@example.test"


def test_visitors_are_sent_to_sign_in(app, db, make):
    user = make.user()
    visitor = app.test_client()
    for path in ("/account/password", "/account/email", "/account/sessions", "/account/users"):
        assert visitor.get(path).headers["Location"].startswith(SIGN_IN_PATH)
    for path in (
        "/account/password",
        "/account/email",
        "/account/sessions/end",
        "/account/users/invite",
        f"/account/users/{user.id}/remove",
    ):
        response = visitor.post(path, data={"email": "a@example.test", "scope": "others", "locale": "en"})
        assert response.status_code == 302 and response.headers["Location"].startswith(SIGN_IN_PATH)
    db.session.refresh(user)
    assert user.disabled_at is None and user.email != "a@example.test" and outbox_messages("email") == []


def test_owners_find_their_users_page_in_the_navigation(app, auth, make):
    owner = app.test_client()
    auth.fast_sign_in(owner, make.user("seller_owner"))
    assert 'href="/account/users"' in owner.get("/help").get_data(as_text=True)
    member = app.test_client()
    auth.fast_sign_in(member, make.user("seller_user"))
    page = member.get("/help").get_data(as_text=True)
    assert 'href="/account/users"' not in page and 'href="/staff/"' not in page


def test_change_e_mail_tells_the_old_and_the_new_address(db, client, me):
    # ASVS 6.3.7, 7.5.1
    response = client.post("/account/email", data={"email": "  Hanako.New@Example.TEST "})
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/sessions?after=email")
    db.session.refresh(me)
    assert me.email == "hanako.new@example.test" and me.email_changed_at is not None
    old = outbox_messages("email", "sato.hanako@example.test")[-1]
    new = outbox_messages("email", "hanako.new@example.test")[-1]
    assert old.template == "account/email/email_changed_old" and "hanako.new@example.test" not in old.body
    assert "h•••@example.test" in old.body
    assert new.template == "account/email/email_changed_new"
    event = db.session.execute(select(SecurityEvent).where(SecurityEvent.kind == "email_changed")).scalar_one()
    assert event.details["old"] == "sato.hanako@example.test"


def test_change_e_mail_retires_reset_links_sent_to_the_old_address(app, db, client, me):
    app.test_client().post("/account/password/forgot", data={"email": me.email})
    path = link_in_last_email(me.email, "/account/password/reset/")
    client.post("/account/email", data={"email": "hanako.new@example.test"})
    assert app.test_client().get(path).status_code == 404
    assert (
        db.session.execute(
            select(ActionToken).where(ActionToken.used_at.is_(None), ActionToken.user_id == me.id)
        ).first()
        is None
    )


@pytest.mark.parametrize(
    "email, message",
    [
        ("", "Enter your e-mail address"),
        ("not-an-address", "like name@example.com"),
        ("a" * 260 + "@example.test", "at most 254"),
        ("sato.hanako@example.test", "already your e-mail address"),
        ("{other}", "Another login already uses this address"),
    ],
)
def test_change_e_mail_refuses_bad_addresses(db, client, make, me, email, message):
    other = make.user()
    response = client.post(
        "/account/email", data={"email": email.format(other=other.email)}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.refresh(me)
    assert me.email == "sato.hanako@example.test"
    assert outbox_messages("email") == []


def test_change_e_mail_without_csrf_token_changes_nothing(db, client, me):
    assert client.post("/account/email", data={"email": "x@example.test"}, csrf=False).status_code == 400
    db.session.refresh(me)
    assert me.email == "sato.hanako@example.test"


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", "' OR 1=1 --"])
def test_script_and_sql_like_input_comes_back_escaped(client, me, payload):
    page = client.post("/account/email", data={"email": payload}).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page or "&#39; OR 1=1 --" in page
