"""Attacks on the second step: codes moved between challenges, reused or late,
trusted-device cookies carried to another user, and the 100-failure ceiling
(ASVS 6.5.1, 6.5.5, 6.6.2; NIST SP 800-63B)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from recovery_app.auth import services, twofactor
from recovery_app.models import SentCode
from tests.helpers import TEST_PASSWORD, last_code, later
from tests.security.conftest import changed_tables, snapshot

PHONE = "+819012345678"


def _other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_a_sign_in_code_does_not_pass_another_browsers_challenge(app, make, auth, add_phone, db):
    # ASVS 6.6.2: the code is bound to the challenge it was sent for, not to the user or the phone
    user = make.user(enrolled=False)
    add_phone(user)
    first, second = app.test_client(), app.test_client()
    auth.password(first, user)
    code_for_first = last_code(PHONE)
    auth.password(second, user)
    newest = db.session.execute(select(SentCode).order_by(SentCode.id.desc()).limit(1)).scalar_one()
    # make sure the second challenge's own code differs, whatever the random draw was
    newest.code_hash = twofactor._code_hash(newest.challenge_id, _other_code(code_for_first))
    db.session.flush()
    refused = second.post("/sign-in/code", data={"code": code_for_first})
    assert refused.status_code == 200 and "not right" in refused.get_data(as_text=True)
    assert second.get("/settings/security").status_code == 302
    assert first.post("/sign-in/code", data={"code": code_for_first}).status_code == 302
    assert first.get("/settings/security").status_code == 200


def test_a_sign_in_code_does_not_pass_the_confirm_page(app, make, auth, add_phone, db):
    # ASVS 6.6.2: nor a challenge of another purpose (the fresh code before a settings change)
    user = make.user(enrolled=False)
    add_phone(user)
    signed_in, at_password = app.test_client(), app.test_client()
    auth.fast_sign_in(signed_in, user)
    auth.password(at_password, user)
    sign_in_code = last_code(PHONE)
    assert signed_in.get("/settings/confirm").status_code == 200
    confirm_sent = db.session.execute(select(SentCode).order_by(SentCode.id.desc()).limit(1)).scalar_one()
    assert confirm_sent.purpose != "sign_in" or confirm_sent.challenge_id
    confirm_sent.code_hash = twofactor._code_hash(confirm_sent.challenge_id, _other_code(sign_in_code))
    db.session.flush()
    response = signed_in.post("/settings/confirm", data={"code": sign_in_code})
    assert response.status_code == 200
    with signed_in.session_transaction() as sess:
        assert "fresh_code_at" not in sess


def test_a_recovery_code_works_once_across_sign_in_and_the_confirm_page(client, make, auth, now, app):
    # ASVS 6.5.1, NIST look-up secrets: used once, wherever it is typed
    user = make.user(locale="en")
    codes = twofactor.generate_recovery_codes(user, now)
    auth.password(client, user)
    client.post("/sign-in/other-ways", data={"method_id": "recovery"})
    assert client.post("/sign-in/code", data={"code": codes[0]}).status_code == 302
    again = app.test_client()
    auth.fast_sign_in(again, user)
    again.get("/settings/confirm?recovery=1")
    before_left = twofactor.remaining_recovery_codes(user)
    reused = again.post("/settings/confirm", data={"code": codes[0]})
    assert reused.status_code == 200 and "already used" in reused.get_data(as_text=True)
    with again.session_transaction() as sess:
        assert "fresh_code_at" not in sess
    assert twofactor.remaining_recovery_codes(user) == before_left == len(codes) - 1


def test_an_sms_code_lives_ten_minutes_and_not_a_second_more(app, make, add_phone, now):
    # ASVS 6.5.5, NIST out-of-band: valid at most 10 minutes
    user = make.user(enrolled=False)
    add_phone(user)
    in_time = twofactor.send_code(
        user, phone_e164=PHONE, channel="sms", purpose="sign_in", challenge_id="c-in-time", now=now
    )
    code = last_code(PHONE)
    assert in_time.expires_at - in_time.created_at == timedelta(minutes=10)
    assert (
        twofactor.check_sent_code(user, challenge_id="c-in-time", code=code, now=later(now, minutes=9, seconds=59))
        is not None
    )
    twofactor.send_code(user, phone_e164=PHONE, channel="sms", purpose="sign_in", challenge_id="c-late", now=now)
    late_code = last_code(PHONE)
    assert twofactor.check_sent_code(user, challenge_id="c-late", code=late_code, now=later(now, minutes=10)) is None


def test_an_sms_code_after_ten_minutes_is_refused_on_the_page_and_signs_nobody_in(client, make, auth, add_phone, db):
    user = make.user(enrolled=False)
    add_phone(user)
    auth.password(client, user)
    sent = db.session.execute(select(SentCode)).scalar_one()
    sent.created_at -= timedelta(minutes=10, seconds=1)
    sent.expires_at -= timedelta(minutes=10, seconds=1)
    db.session.flush()
    response = client.post("/sign-in/code", data={"code": last_code(PHONE)})
    assert response.status_code == 200 and "expired" in response.get_data(as_text=True)
    assert sent.used_at is None and client.get("/settings/security").status_code == 302


def test_a_trusted_device_cookie_copied_to_another_user_asks_for_a_code(app, make, auth, db):
    # ASVS 6.3.3: the cookie only ever skips the code for the user who chose "don't ask again"
    owner, stranger = make.user(), make.user()
    browser = app.test_client()
    auth.sign_in(browser, owner, remember=True)
    token = browser.get_cookie("trusted_device").value
    thief = app.test_client()
    thief.set_cookie("trusted_device", token)
    before = snapshot()
    response = auth.password(thief, stranger)
    assert response.headers["Location"].endswith("/sign-in/code")
    assert thief.get("/settings/security").status_code == 302
    assert "trusted_devices" not in changed_tables(before, snapshot())
    copy = app.test_client()  # the same cookie on another browser of its own user still works
    copy.set_cookie("trusted_device", token)
    assert auth.password(copy, owner).headers["Location"] == "/"


def test_a_trusted_device_does_not_skip_the_code_on_a_hard_locked_account(app, make, auth, now):
    user = make.user()
    browser = app.test_client()
    auth.sign_in(browser, user, remember=True)
    browser.post("/sign-out")
    user.password_changed_at = later(now, days=-30)
    user.hard_locked_at = now
    response = auth.password(browser, user)
    assert response.status_code == 200 and "locked" in response.get_data(as_text=True)


def test_a_hundred_wrong_codes_hard_lock_the_account_and_wrong_passwords_do_not_count(app, make, now, db):
    # NIST SP 800-63B 5.2.2: at most 100 consecutive failures; only those after a right password count,
    # so that an address alone cannot lock the owner out
    user = make.user()
    user.password_changed_at = later(now, days=-30)  # no password reset since the lock
    challenge = services.Challenge(id="c", method_id=twofactor.primary_method(user).id)
    moment = now
    for i in range(198):
        moment = later(moment, hours=1)
        try:
            if i % 2:
                services.authenticate(user.email, "wrong password here", moment, address=None, browser=None)
            else:
                services.verify_code(user, challenge, "000000", moment, address=None, browser=None)
        except services.AuthError:
            pass
    assert user.hard_locked_at is None and user.consecutive_failures == 99
    try:
        services.verify_code(user, challenge, "000000", later(moment, hours=1), address=None, browser=None)
    except services.AuthError:
        pass
    assert user.hard_locked_at is not None
    try:
        services.authenticate(user.email, TEST_PASSWORD, later(moment, days=30), address=None, browser=None)
    except services.AuthError as exc:
        assert exc.message is services.HARD_LOCKED
    else:
        raise AssertionError("a hard-locked account accepted its password")


def test_a_right_code_resets_the_failure_count(app, make, now):
    user = make.user()
    import pyotp

    challenge = services.Challenge(id="c", method_id=twofactor.primary_method(user).id)
    for i in range(60):
        try:
            services.authenticate(user.email, "wrong password here", later(now, hours=i), address=None, browser=None)
        except services.AuthError:
            pass
    moment = later(now, hours=61)
    services.authenticate(user.email, TEST_PASSWORD, moment, address=None, browser=None)
    code = pyotp.TOTP(user._test_totp_seed).at(moment)
    services.verify_code(user, challenge, code, moment, address=None, browser=None)
    assert user.consecutive_failures == 0 and user.hard_locked_at is None
