"""The second step: codes by SMS and voice, backups, recovery codes, trusted
devices, and the attempt limits around them."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from recovery_app.auth import services, twofactor
from recovery_app.models import SecurityEvent, SentCode
from tests.helpers import TEST_PASSWORD, last_code, later, outbox_messages

PHONE = "+819012345678"
OTHER_PHONE = "+818011112222"


def kinds(db, user):
    return [
        e.kind
        for e in db.session.execute(
            select(SecurityEvent).where(SecurityEvent.user_id == user.id).order_by(SecurityEvent.id)
        ).scalars()
    ]


def test_sms_primary_gets_a_code_at_the_password_step(client, make, auth, add_phone):
    user = make.user(enrolled=False)
    add_phone(user)
    auth.password(client, user)
    [sms] = outbox_messages("sms", PHONE)
    assert outbox_messages("email") == []  # ASVS 6.6.1: codes never by e-mail
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert "5678" in page and PHONE not in page
    assert client.post("/sign-in/code", data={"code": last_code(PHONE)}).status_code == 302


def test_sms_code_is_accepted_once(app, make, add_phone, now):
    # ASVS 6.5.1, NIST 800-63B out-of-band codes
    user = make.user(enrolled=False)
    add_phone(user)
    challenge, problem = services.start_challenge(user, now)
    assert problem is None
    code = last_code(PHONE)
    assert services.verify_code(user, challenge, code, now, address=None, browser=None) == "sms"
    with pytest.raises(services.AuthError):
        services.verify_code(user, challenge, code, later(now, seconds=5), address=None, browser=None)


def test_a_code_sent_for_one_challenge_fails_on_another(app, make, auth, add_phone):
    # ASVS 6.6.2
    user = make.user(enrolled=False)
    add_phone(user)
    first, second = app.test_client(), app.test_client()
    auth.password(first, user)
    code_for_first = last_code(PHONE)
    auth.password(second, user)
    response = second.post("/sign-in/code", data={"code": code_for_first})
    if last_code(PHONE) != code_for_first:
        assert response.status_code == 200
    assert first.post("/sign-in/code", data={"code": code_for_first}).status_code == 302


def test_sms_code_after_ten_minutes_is_refused(client, make, auth, add_phone, db):
    # ASVS 6.5.5
    from recovery_app.models import SentCode

    user = make.user(enrolled=False)
    add_phone(user)
    auth.password(client, user)
    sent = db.session.execute(select(SentCode)).scalar_one()
    sent.created_at -= timedelta(minutes=11)
    sent.expires_at -= timedelta(minutes=11)
    db.session.flush()
    response = client.post("/sign-in/code", data={"code": last_code(PHONE)})
    assert response.status_code == 200 and "expired" in response.get_data(as_text=True)


def test_backups_page_lists_every_way_and_the_recovery_route(client, make, auth, add_phone, now):
    user = make.user()
    add_phone(user, primary=False)
    add_phone(user, OTHER_PHONE, kind="voice", primary=False)
    twofactor.generate_recovery_codes(user, now)
    auth.password(client, user)
    page = client.get("/sign-in/other-ways").get_data(as_text=True)
    assert page.count('action="/sign-in/other-ways"') == 5  # sms, call instead, other phone, app, recovery code
    assert 'href="/recovery/"' in page  # "I can't use any of these" opens a recovery case
    # The section names the route and the button is the choice, rather than both saying the same words.
    assert "<h2>Recovery with an official ID</h2>" in page and page.count("use any of these") == 1
    start = client.get("/recovery/")
    assert start.status_code == 200 and "12" in start.get_data(as_text=True)


def test_sms_that_does_not_arrive_can_be_repeated_as_a_voice_call(client, make, auth, add_phone, now):
    user = make.user(enrolled=False)
    method = add_phone(user)
    auth.password(client, user)
    throttled = client.post("/sign-in/other-ways", data={"method_id": str(method.id), "channel": "voice"})
    assert throttled.status_code == 302  # same challenge: the 60-second resend rule holds
    assert len(outbox_messages()) == 1
    with client.session_transaction() as sess:
        challenge_id = sess["challenge"]["id"]
    sent = SentCode
    from recovery_app.extensions import db

    for row in db.session.execute(select(sent)).scalars():
        row.created_at -= timedelta(seconds=61)
    db.session.flush()
    client.post("/sign-in/other-ways", data={"method_id": str(method.id), "channel": "voice"})
    voice = outbox_messages("voice", PHONE)
    assert len(voice) == 1
    with client.session_transaction() as sess:
        assert sess["challenge"]["id"] == challenge_id
    assert client.post("/sign-in/code", data={"code": last_code(PHONE)}).status_code == 302


def test_other_phone_and_authenticator_from_the_backups_page(client, make, auth, add_phone):
    user = make.user()
    backup = add_phone(user, OTHER_PHONE, primary=False)
    auth.password(client, user)
    assert outbox_messages() == []  # the app is primary: nothing sent
    client.post("/sign-in/other-ways", data={"method_id": str(backup.id), "channel": "sms"})
    assert outbox_messages("sms", OTHER_PHONE)
    assert client.post("/sign-in/code", data={"code": last_code(OTHER_PHONE)}).status_code == 302


def test_someone_elses_method_cannot_be_chosen(client, make, auth, add_phone):
    user, stranger = make.user(), make.user()
    foreign = add_phone(stranger, OTHER_PHONE)
    auth.password(client, user)
    response = client.post("/sign-in/other-ways", data={"method_id": str(foreign.id), "channel": "sms"})
    assert response.headers["Location"].endswith("/sign-in/other-ways")
    assert outbox_messages() == []
    garbage = client.post("/sign-in/other-ways", data={"method_id": "'; drop table users; --", "channel": "x"})
    assert garbage.status_code == 302


def test_recovery_code_signs_in_once(client, make, auth, now, db):
    # ASVS 6.5.1, NIST 800-63B look-up secrets
    user = make.user()
    codes = twofactor.generate_recovery_codes(user, now)
    auth.password(client, user)
    client.post("/sign-in/other-ways", data={"method_id": "recovery"})
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert "recovery" in page.lower()
    assert client.post("/sign-in/code", data={"code": codes[0].upper().replace("-", " ")}).status_code == 302
    assert "recovery_code_used" in kinds(db, user)
    assert outbox_messages("email", user.email)  # the user is told (ASVS 6.3.7)
    client.post("/sign-out")
    auth.password(client, user)
    client.post("/sign-in/other-ways", data={"method_id": "recovery"})
    reused = client.post("/sign-in/code", data={"code": codes[0]})
    assert reused.status_code == 200 and "already used" in reused.get_data(as_text=True)
    malformed = client.post("/sign-in/code", data={"code": "not-a-code!"})
    assert "abcde-23456" in malformed.get_data(as_text=True)


def test_a_code_typed_in_full_width_digits_signs_in(client, make, auth):
    # A Japanese input method left on types １２３４５６: the code is the same code.
    user = make.user()
    auth.password(client, user)
    full_width = auth.totp(user).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    response = client.post("/sign-in/code", data={"code": full_width[:3] + "ー" + full_width[3:]})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_dont_ask_again_sets_a_trusted_device_cookie_that_skips_the_code(client, make, auth, app, db):
    user = make.user()
    response = auth.sign_in(client, user, remember=True)
    header = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("trusted_device=")][0]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Max-Age=7776000" in header  # 90 days
    assert "trusted_device_added" in kinds(db, user)
    client.post("/sign-out")
    again = auth.password(client, user)
    assert again.headers["Location"] == "/"  # signed in without a code
    assert client.get("/settings/security").status_code == 200


def test_trusted_device_cookie_of_another_user_is_ignored(app, make, auth):
    owner, other = make.user(), make.user()
    client = app.test_client()
    auth.sign_in(client, owner, remember=True)
    token = client.get_cookie("trusted_device").value
    thief = app.test_client()
    thief.set_cookie("trusted_device", token)
    assert auth.password(thief, other).headers["Location"].endswith("/sign-in/code")


def test_tampered_trusted_device_cookie_is_ignored(client, make, auth):
    user = make.user()
    auth.sign_in(client, user, remember=True)
    token = client.get_cookie("trusted_device").value
    client.post("/sign-out")
    for forged in (token[:-2] + "xx", "", "x" * 3000, "../../etc/passwd"):
        client.set_cookie("trusted_device", forged)
        g.pop("_login_user", None)
        assert auth.password(client, user).headers["Location"].endswith("/sign-in/code")
        client.post("/sign-out")


def test_ten_wrong_codes_pause_the_challenge_for_fifteen_minutes(client, make, auth, db, roomy_limits):
    user = make.user()
    auth.password(client, user)
    for _ in range(9):
        client.post("/sign-in/code", data={"code": "000000"})
    locked = client.post("/sign-in/code", data={"code": "000000"})
    assert user.code_locked_until is not None
    text = locked.get_data(as_text=True)
    assert "15" in text and 'name="code"' not in text  # the page says so and when it ends
    right = client.post("/sign-in/code", data={"code": auth.totp(user)})
    assert right.status_code == 200 and user.last_sign_in_at is None  # even the right code waits
    assert "code_locked" in kinds(db, user)


def test_code_pause_ends_after_fifteen_minutes(app, make, now):
    user = make.user()
    challenge = services.Challenge(id="c1", method_id=twofactor.primary_method(user).id)
    for _ in range(10):
        try:
            services.verify_code(user, challenge, "000000", now, address=None, browser=None)
        except services.AuthError as exc:
            last = exc
    assert last.until == now + timedelta(minutes=15)
    import pyotp

    code = pyotp.TOTP(user._test_totp_seed).at(later(now, minutes=16))
    assert services.verify_code(user, challenge, code, later(now, minutes=16), address=None, browser=None) == "totp"


def test_repeated_wrong_codes_after_a_right_password_send_a_notice(client, make, auth):
    # ASVS 6.3.5: suspicious attempt
    user = make.user()
    auth.password(client, user)
    for _ in range(3):
        client.post("/sign-in/code", data={"code": "000000"})
    [notice] = outbox_messages("email", user.email)
    assert "password" in notice.subject.lower() or "パスワード" in notice.subject


def test_wrong_passwords_bring_a_growing_delay(app, make, now):
    # ASVS 6.3.1
    user = make.user()

    def refusal(password, at):
        try:
            services.authenticate(user.email, password, at, address=None, browser=None)
        except services.AuthError as exc:
            return str(exc.message)
        raise AssertionError("the password was accepted")

    for _ in range(5):
        refusal("wrong password here", now)
    assert user.password_delay_until == now + timedelta(seconds=1)
    # During the delay a right and a wrong password read the same, and neither is counted.
    assert refusal(TEST_PASSWORD, now) == refusal("wrong password here", now) == str(services.SIGN_IN_SLOWED)
    assert (user.failed_password_count, user.password_delay_until) == (5, now + timedelta(seconds=1))
    refusal("wrong password here", later(now, seconds=1))
    assert user.password_delay_until == later(now, seconds=1) + timedelta(seconds=2)
    assert services.authenticate(user.email, TEST_PASSWORD, later(now, seconds=3), address=None, browser=None) is user
    assert user.failed_password_count == 0


def test_hundred_consecutive_failures_lock_the_account(app, make, now):
    # NIST 800-63B: at most 100 consecutive failed attempts, counted after a right password
    user = make.user()
    user.password_changed_at = later(now, days=-30)
    challenge = services.Challenge(id="c", method_id=twofactor.primary_method(user).id)
    for i in range(100):
        try:
            services.verify_code(user, challenge, "000000", later(now, hours=i), address=None, browser=None)
        except services.AuthError:
            pass
    assert user.hard_locked_at is not None
    assert any("locked" in m.subject.lower() or "ロック" in m.subject for m in outbox_messages("email", user.email))
    try:
        services.authenticate(user.email, TEST_PASSWORD, later(now, days=10), address=None, browser=None)
    except services.AuthError as exc:
        assert exc.message is services.HARD_LOCKED
    else:
        raise AssertionError("a hard-locked account accepted its password")
    manager = make.user(role="manager")
    services.unlock(user, manager, later(now, days=10))
    assert services.authenticate(user.email, TEST_PASSWORD, later(now, days=10), address=None, browser=None) is user


def test_wrong_passwords_alone_never_hard_lock_the_account(app, make, now):
    # Someone who knows only the e-mail address can slow sign-in, not lock the owner out.
    user = make.user()
    for i in range(150):
        try:
            services.authenticate(user.email, "wrong password here", later(now, hours=i), address=None, browser=None)
        except services.AuthError:
            pass
    assert user.hard_locked_at is None and user.consecutive_failures == 0
    assert services.authenticate(user.email, TEST_PASSWORD, later(now, days=10), address=None, browser=None) is user


def test_password_reset_plus_second_factor_lifts_the_hard_lock(client, make, auth, now, db):
    user = make.user()
    user.password_changed_at = later(now, days=-30)
    user.hard_locked_at = later(now, days=-1)
    user.consecutive_failures = 100
    assert "locked" in auth.password(client, user).get_data(as_text=True)
    user.password_changed_at = later(now, hours=-1)  # what the forgot-password flow records
    db.session.flush()
    auth.sign_in(client, user)
    assert user.hard_locked_at is None and user.consecutive_failures == 0


def test_sign_in_is_rate_limited_per_address(app, make):
    # ASVS 6.3.1, 2.4.1
    app.config["RECOVERY_LIMIT_SIGN_IN"] = "3 per minute"
    client = app.test_client()
    for _ in range(3):
        assert client.post("/sign-in", data={"email": "a@example.test", "password": "x" * 12}).status_code == 200
    refused = client.post("/sign-in", data={"email": "a@example.test", "password": "x" * 12})
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)
    # The refusal says when the window lets this address in again, within the minute.
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Please try again in 1 minute." in refused.get_data(as_text=True)


def test_a_refusal_under_an_hourly_limit_says_how_many_minutes_in_japanese(app):
    app.config["RECOVERY_LIMIT_SIGN_IN"] = "2 per hour"
    client = app.test_client()
    headers = {"Accept-Language": "ja"}
    for _ in range(2):
        client.post("/sign-in", data={"email": "a@example.test", "password": "x" * 12}, headers=headers)
    refused = client.post("/sign-in", data={"email": "a@example.test", "password": "x" * 12}, headers=headers)
    assert refused.status_code == 429
    seconds = int(refused.headers["Retry-After"])
    assert 1 <= seconds <= 3600
    said = refused.get_data(as_text=True)
    assert f"試行回数が多すぎます。{math.ceil(seconds / 60)}分ほど待ってから、もう一度お試しください。" in said


def test_answers_under_a_limit_carry_no_limit_counters(app):
    """How many tries are left is not shown to anyone trying passwords."""
    app.config["RECOVERY_LIMIT_SIGN_IN"] = "3 per minute"
    answer = app.test_client().post("/sign-in", data={"email": "a@example.test", "password": "x" * 12})
    assert answer.status_code == 200
    assert not [name for name in answer.headers.keys() if name.lower().startswith(("x-ratelimit", "retry-after"))]


def test_code_checks_are_rate_limited_per_address(app, make, auth):
    app.config["RECOVERY_LIMIT_CODE_CHECK"] = "2 per minute"
    user = make.user()
    client = app.test_client()
    auth.password(client, user)
    client.post("/sign-in/code", data={"code": "000000"})
    client.post("/sign-in/code", data={"code": "000000"})
    assert client.post("/sign-in/code", data={"code": "000000"}).status_code == 429


def test_challenge_shows_an_open_recovery_case(client, make, auth):
    user = make.user()
    case = make.case(user)
    auth.password(client, user)
    assert case.reference in client.get("/sign-in/code").get_data(as_text=True)


def test_challenge_links_to_a_recently_decided_case(client, make, auth, now, db):
    # A seller who cannot pass the code step reaches their decision from here
    # (the rejection e-mail links to the case page).
    from datetime import timedelta

    from recovery_app.models.base import utcnow

    user = make.user()
    case = make.case(user)
    case.status, case.closed_at, case.decided_at = "rejected", utcnow(), utcnow()
    db.session.flush()
    auth.password(client, user)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert case.reference in page and 'href="/recovery/case"' in page
    assert f"Your identity recovery request {case.reference} was not approved." in page  # the outcome, in words
    case.status = "withdrawn"
    db.session.flush()
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert f"Your identity recovery request {case.reference} is closed." in page
    case.closed_at = utcnow() - timedelta(days=31)
    db.session.flush()
    assert case.reference not in client.get("/sign-in/code").get_data(as_text=True)


@pytest.mark.parametrize("method_id", ["99999999999999999999", str(2**31), "²", "１２", "-1", "1e3"])
def test_a_method_number_that_names_no_row_goes_back_to_the_list(client, make, auth, method_id):
    user = make.user()
    auth.password(client, user)
    with client.session_transaction() as sess:
        before = dict(sess["challenge"])
    response = client.post("/sign-in/other-ways", data={"method_id": method_id, "channel": ""})
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in/other-ways")
    with client.session_transaction() as sess:
        assert sess["challenge"] == before  # the challenge in progress is kept
