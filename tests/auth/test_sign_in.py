"""The password step and the 2SV challenge, through the real forms."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import g
from sqlalchemy import select

from recovery_app.models import SecurityEvent, UserSession
from tests.helpers import TEST_PASSWORD, later, outbox_messages


def events(db, user, kind):
    return (
        db.session.execute(select(SecurityEvent).where(SecurityEvent.user_id == user.id, SecurityEvent.kind == kind))
        .scalars()
        .all()
    )


def test_sign_in_form_carries_the_standard_autocomplete_values(client):
    # ASVS 6.2.7: password managers and paste work
    text = client.get("/sign-in").get_data(as_text=True)
    assert 'autocomplete="username"' in text
    assert 'autocomplete="current-password"' in text and 'type="password"' in text


def test_right_password_leads_to_the_code_step_not_a_session(client, make, auth):
    user = make.user()
    response = auth.password(client, user)
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in/code")
    # ASVS 6.3.3: nothing but the challenge is reachable yet
    assert client.get("/settings/security").status_code == 302
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    assert "remember_device" in page and "/sign-in/other-ways" in page


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make, auth, db):
    # ASVS 6.3.8: no enumeration by message or status
    user = make.user()
    wrong_password = auth.password(client, user, password="not the password at all")
    unknown = client.post("/sign-in", data={"email": "nobody@example.test", "password": "not the password at all"})
    assert wrong_password.status_code == unknown.status_code == 200
    strip = lambda r: r.get_data(as_text=True).split('name="csrf_token"')[0]  # noqa: E731
    assert "do not match" in wrong_password.get_data(as_text=True)
    assert strip(wrong_password).replace(user.email, "") == strip(unknown).replace("nobody@example.test", "")
    assert events(db, user, "password_failed")


def test_full_sign_in_with_an_authenticator_code(client, make, auth, db, backend):
    user = make.user()
    auth.sign_in(client, user)
    assert client.get("/settings/security").status_code == 200
    assert events(db, user, "signed_in")[0].details["via"] == "totp"
    assert user.last_sign_in_at is not None
    rows = db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).scalars().all()
    assert len(rows) == 1 and rows[0].ended_at is None


def test_sign_in_honours_a_local_next_and_refuses_an_offsite_one(client, make, auth):
    user = make.user()
    auth.password(client, user, next="/settings/security")
    response = client.post("/sign-in/code", data={"code": auth.totp(user)})
    assert response.headers["Location"].endswith("/settings/security")
    client.post("/sign-out")
    auth.password(client, user, next="https://evil.example/steal")
    response = client.post("/sign-in/code", data={"code": auth.totp(user, time.time() + 30)})
    assert "evil.example" not in response.headers["Location"]


def test_sign_in_page_refuses_offsite_next_for_signed_in_users(client, make, auth):
    user = make.user()
    auth.sign_in(client, user)
    response = client.get("/sign-in?next=//evil.example/")
    assert response.status_code == 302 and "evil.example" not in response.headers["Location"]


def test_session_id_set_before_sign_in_is_not_kept(client, make, auth):
    # ASVS 7.2.4: session fixation
    with client.session_transaction() as sess:
        sess["planted"] = "attacker"
        sess["sid"] = "attacker-chosen"
    user = make.user()
    auth.sign_in(client, user)
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess["sid"] != "attacker-chosen"


def test_sign_out_ends_the_session_server_side(client, make, auth, db):
    # ASVS 7.4.1
    user = make.user()
    auth.sign_in(client, user)
    with client.session_transaction() as sess:
        stolen = dict(sess)
    assert client.post("/sign-out").status_code == 302
    with client.session_transaction() as sess:
        sess.update(stolen)
    assert client.get("/settings/security").status_code == 302
    assert events(db, user, "signed_out")


def test_sign_out_in_the_password_step_state(client, make, auth):
    user = make.user()
    auth.password(client, user)
    client.post("/sign-out")
    assert client.get("/sign-in/code").headers["Location"].endswith("/sign-in")


def test_wrong_code_is_refused_and_counted(client, make, auth, db):
    user = make.user()
    auth.password(client, user)
    response = client.post("/sign-in/code", data={"code": "000000"})
    assert response.status_code == 200 and "not right" in response.get_data(as_text=True)
    assert user.failed_code_count == 1 and user.consecutive_failures == 1
    assert client.get("/settings/security").status_code == 302


def test_malformed_codes_get_a_clear_message_and_change_nothing(client, make, auth, db):
    user = make.user()
    auth.password(client, user)
    for bad in ("12a456", "12345", "1234567", "", "x" * 100, "١٢٣٤٥٦"):
        response = client.post("/sign-in/code", data={"code": bad})
        assert response.status_code == 200
        assert 'class="field-error"' in response.get_data(as_text=True), bad
    assert user.failed_code_count == 0 and not events(db, user, "code_failed")


def test_code_with_spaces_and_dashes_is_accepted(client, make, auth):
    user = make.user()
    auth.password(client, user)
    code = auth.totp(user)
    response = client.post("/sign-in/code", data={"code": f" {code[:3]}-{code[3:]} "})
    assert response.status_code == 302


def test_replayed_totp_code_is_refused(client, make, auth, app):
    # ASVS 6.5.1
    user = make.user()
    code = auth.totp(user)
    auth.password(client, user)
    assert client.post("/sign-in/code", data={"code": code}).status_code == 302
    client.post("/sign-out")
    auth.password(client, user)
    response = client.post("/sign-in/code", data={"code": code})
    assert response.status_code == 200 and "already used" in response.get_data(as_text=True)


def test_password_step_expires_after_the_idle_timeout(client, make, auth, now):
    user = make.user()
    auth.fast_password_step(client, user, at=later(now, hours=-2))
    assert client.get("/sign-in/code").headers["Location"].endswith("/sign-in")


def test_bumped_epoch_ends_the_password_step(client, make, auth, db):
    user = make.user()
    auth.password(client, user)
    user.session_epoch += 1
    db.session.flush()
    assert client.get("/sign-in/code").status_code == 302


def test_disabled_user_gets_the_generic_refusal(client, make, auth, now):
    user = make.user()
    user.disabled_at = now
    response = auth.password(client, user)
    assert response.status_code == 200 and "do not match" in response.get_data(as_text=True)


def test_csrf_token_is_required_on_sign_in(client, make):
    user = make.user()
    response = client.post("/sign-in", data={"email": user.email, "password": TEST_PASSWORD}, csrf=False)
    assert response.status_code == 400
    wrong = client.post("/sign-in", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": "forged"})
    assert wrong.status_code == 400
    with client.session_transaction() as sess:
        assert "pending" not in sess


def test_empty_and_overlong_sign_in_fields_get_messages(client, db):
    empty = client.post("/sign-in", data={"email": "", "password": ""}).get_data(as_text=True)
    assert empty.count('class="field-error"') == 2
    long = client.post("/sign-in", data={"email": "a" * 250 + "@x.test", "password": "p" * 2000})
    assert long.status_code == 200 and long.get_data(as_text=True).count('class="field-error"') == 2
    assert db.session.execute(select(SecurityEvent)).first() is None


def test_tampered_session_cookie_is_ignored(client, make, auth, app):
    user = make.user()
    auth.sign_in(client, user)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value[:-4] + "AAAA")
    g.pop("_login_user", None)  # the test app context outlives requests; a real one does not
    response = client.get("/settings/security")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_unknown_accept_language_on_sign_in_is_fine(client):
    response = client.get("/sign-in", headers={"Accept-Language": "zz-ZZ;q=bogus,,*;q=x"})
    assert response.status_code == 200


def test_new_device_sign_in_sends_a_notice_without_a_code(client, make, auth, now):
    # ASVS 6.3.5 (new device)
    user = make.user()
    user.last_sign_in_at = later(now, days=-3)
    auth.sign_in(client, user)
    notices = outbox_messages("email", user.email)
    assert len(notices) == 1
    assert not any(ch.isdigit() for ch in notices[0].body.split("\n")[0])
    client.post("/sign-out")
    auth.password(client, user)
    client.post("/sign-in/code", data={"code": auth.totp(user, time.time() + 30)})
    assert len(outbox_messages("email", user.email)) == 1  # the same browser is not new


def test_pages_follow_the_browser_language_and_keep_the_switch_through_sign_in(app, make, auth):
    user = make.user(locale="ja")
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja-JP,ja;q=0.9"
    assert "ログイン" in client.get("/sign-in").get_data(as_text=True)
    client.get("/language/en")
    auth.password(client, user)
    assert "Enter your code" in client.get("/sign-in/code").get_data(as_text=True)
    client.post("/sign-in/code", data={"code": auth.totp(user)})
    assert "Security settings" in client.get("/settings/security").get_data(as_text=True)


def test_unknown_email_costs_the_same_argon2_work_as_a_wrong_password(client, make, monkeypatch):
    # ASVS 6.3.8: no enumeration by timing. Counted rather than timed: both paths
    # run exactly one argon2id verification with the configured parameters.
    from argon2 import PasswordHasher

    calls = []
    original = PasswordHasher.verify

    def counting(self, hash, password):
        calls.append((self.time_cost, self.memory_cost, self.parallelism))
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    user = make.user()
    client.post("/sign-in", data={"email": user.email, "password": "not the password at all"})
    known = list(calls)
    calls.clear()
    client.post("/sign-in", data={"email": "nobody@example.test", "password": "not the password at all"})
    assert len(known) == 1 and calls == known


def test_sign_in_page_says_why_the_session_ended(client, make, auth, db):
    # ASVS 7.3.1: inactivity timeout enforced, and the user is told
    user = make.user()
    auth.sign_in(client, user)
    row = db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).scalar_one()
    row.last_seen_at = row.last_seen_at - timedelta(hours=2)
    db.session.flush()
    response = client.get("/settings/security")
    assert response.status_code == 302
    assert "no activity" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert row.end_reason == "idle"


def test_security_events_carry_time_address_and_browser(client, make, auth, db):
    # ASVS 16.2.1
    user = make.user()
    auth.password(client, user, password="wrong wrong wrong")
    auth.sign_in(client, user)
    for event in db.session.execute(select(SecurityEvent).where(SecurityEvent.user_id == user.id)).scalars():
        assert event.at is not None and event.address == "127.0.0.1" and event.browser, event.kind
