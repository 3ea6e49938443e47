"""Security settings: every change asks for a fresh code first (ASVS 7.5.1)."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from recovery_app.auth import twofactor
from recovery_app.models import RecoveryCode, SecurityEvent, TrustedDevice, TwoFactorMethod, UserSession
from recovery_app.models.base import utcnow
from tests.helpers import last_code, later, outbox_messages

PHONE = "+819012345678"


def kinds(db, user):
    return [
        e.kind
        for e in db.session.execute(
            select(SecurityEvent).where(SecurityEvent.user_id == user.id).order_by(SecurityEvent.id)
        ).scalars()
    ]


def confirmed(db, user):
    return (
        db.session.execute(
            select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id, TwoFactorMethod.confirmed_at.is_not(None))
        )
        .scalars()
        .all()
    )


def test_settings_needs_a_full_session(client, make, auth):
    user = make.user()
    assert client.get("/settings/security").headers["Location"].startswith("/sign-in")
    auth.fast_password_step(client, user)
    assert client.get("/settings/security").status_code == 302


def test_settings_lists_methods_devices_and_links(client, make, auth, add_phone, now):
    user = make.user()
    add_phone(user, primary=False)
    twofactor.trust_device(user, utcnow(), browser="Mozilla/5.0 (iPhone) Safari/604.1", address="203.0.113.9")
    auth.fast_sign_in(client, user)
    page = client.get("/settings/security").get_data(as_text=True)
    assert "5678" in page and "Safari / iPhone" in page
    assert "/settings/security/sign-out-everywhere" in page and "/settings/security/turn-off" in page


def test_changes_without_a_fresh_code_go_to_the_confirm_page(client, make, auth, db):
    user = make.user()
    method = user and confirmed(db, user)[0]
    auth.fast_sign_in(client, user)
    for path in (
        "/settings/security/recovery-codes",
        f"/settings/security/methods/{method.id}/remove",
        "/settings/security/devices/revoke-all",
        "/settings/security/sign-out-everywhere",
        "/settings/security/turn-off",
    ):
        response = client.post(path, headers={"Referer": "/settings/security"})
        assert response.status_code == 302 and "/settings/confirm" in response.headers["Location"], path
    assert client.get("/settings/security/app").headers["Location"].startswith("/settings/confirm")
    assert db.session.execute(select(RecoveryCode)).first() is None


def test_confirm_page_marks_a_fresh_code_and_returns_to_next(client, make, auth):
    user = make.user()
    auth.fast_sign_in(client, user)
    page = client.get("/settings/confirm?next=/settings/security/app")
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.get_data(as_text=True)
    response = client.post("/settings/confirm?next=/settings/security/app", data={"code": auth.totp(user)})
    assert response.headers["Location"].endswith("/settings/security/app")
    assert client.get("/settings/security/app").status_code == 200


def test_the_confirm_page_offers_other_ways_only_when_there_are_some(client, make, auth, db, add_phone):
    user = make.user(locale="en")
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    auth.fast_sign_in(client, user)
    assert "Use another way" not in client.get("/settings/confirm").get_data(as_text=True)
    add_phone(user, primary=False)
    page = client.get("/settings/confirm").get_data(as_text=True)
    assert "Use another way" in page and "5678" in page


def test_confirm_page_refuses_offsite_next(client, make, auth):
    user = make.user()
    auth.fast_sign_in(client, user)
    response = client.post("/settings/confirm?next=https://evil.example/", data={"code": auth.totp(user)})
    assert "evil.example" not in response.headers["Location"]


def test_fresh_code_expires_after_ten_minutes(client, make, auth, now):
    user = make.user()
    auth.fast_sign_in(client, user)
    auth.fresh_code(client, at=later(utcnow(), minutes=-11))
    assert client.post("/settings/security/recovery-codes").status_code == 302


def test_confirm_with_an_sms_method(client, make, auth, add_phone):
    user = make.user(enrolled=False)
    method = add_phone(user)
    auth.fast_sign_in(client, user)
    client.get(f"/settings/confirm?method={method.id}")
    response = client.post("/settings/confirm", data={"code": last_code(PHONE)})
    assert response.headers["Location"].endswith("/settings/security")


def test_wrong_codes_on_the_confirm_page_count_towards_the_lock(client, make, auth, db, roomy_limits):
    user = make.user()
    auth.fast_sign_in(client, user)
    for _ in range(10):
        client.post("/settings/confirm", data={"code": "000000"})
    assert user.code_locked_until is not None
    assert 'name="code"' not in client.get("/settings/confirm").get_data(as_text=True)


def test_add_an_authenticator_app_from_settings(client, make, auth, db):
    user = make.user()
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    page = client.get("/settings/security/app").get_data(as_text=True)
    key = re.sub(r"<[^>]+>|\s", "", re.search(r'id="setup-key">(.*?)</p>', page, re.S).group(1))
    assert client.post("/settings/security/app", data={"code": pyotp.TOTP(key).now()}).status_code == 302
    methods = confirmed(db, user)
    assert len(methods) == 2 and sum(m.is_primary for m in methods) == 1
    assert "method_added" in kinds(db, user) and outbox_messages("email", user.email)


def test_add_a_phone_from_settings_then_make_it_primary_then_remove_the_app(client, make, auth, db):
    user = make.user()
    app_method = confirmed(db, user)[0]
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    client.post("/settings/security/phone", data={"number": "090 1234 5678", "channel": "sms"})
    client.post("/settings/security/phone/confirm", data={"code": last_code(PHONE)})
    phone = [m for m in confirmed(db, user) if m.kind == "sms"][0]
    client.post(f"/settings/security/methods/{phone.id}/primary")
    assert phone.is_primary and not app_method.is_primary
    client.post(f"/settings/security/methods/{app_method.id}/remove")
    assert [m.kind for m in confirmed(db, user)] == ["sms"]
    assert {"method_added", "method_primary_changed", "method_removed"} <= set(kinds(db, user))
    assert len(outbox_messages("email", user.email)) == 3  # ASVS 6.3.7


@pytest.mark.parametrize("channel", [None, ""])
def test_a_phone_without_a_way_to_send_asks_for_one_and_sends_nothing(client, make, auth, db, channel):
    user = make.user(locale="en")
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    data = {"number": "090 1234 5678"} | ({} if channel is None else {"channel": channel})
    page = client.post("/settings/security/phone", data=data).get_data(as_text=True)
    assert "Choose text message or voice call." in page and 'class="radios has-error"' in page
    assert not outbox_messages("sms", PHONE) and [m.kind for m in confirmed(db, user)] == ["totp"]


def test_the_last_method_cannot_be_removed(client, make, auth, db):
    user = make.user()
    method = confirmed(db, user)[0]
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    client.post(f"/settings/security/methods/{method.id}/remove")
    assert confirmed(db, user) == [method]
    assert "唯一の受け取り方法" in client.get("/settings/security").get_data(as_text=True)  # the user reads Japanese


def test_another_users_method_or_device_cannot_be_touched(client, make, auth, db, now):
    user, other = make.user(), make.user()
    foreign = confirmed(db, other)[0]
    twofactor.trust_device(other, now, browser="x", address=None)
    device = db.session.execute(select(TrustedDevice)).scalar_one()
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    client.post(f"/settings/security/methods/{foreign.id}/remove")
    client.post(f"/settings/security/methods/{foreign.id}/primary")
    client.post(f"/settings/security/devices/{device.id}/revoke")
    assert confirmed(db, other) == [foreign] and device.revoked_at is None


def test_regenerate_recovery_codes_replaces_the_old_ones(client, make, auth, db, now):
    user = make.user()
    old = twofactor.generate_recovery_codes(user, now)
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    page = client.post("/settings/security/recovery-codes").get_data(as_text=True)
    new = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", page)
    assert len(new) == 10 and not set(new) & set(old)
    assert not twofactor.use_recovery_code(user, old[0], now)
    assert "recovery_codes_generated" in kinds(db, user)


def test_revoke_one_and_all_trusted_devices(client, make, auth, db, now):
    user = make.user()
    twofactor.trust_device(user, now, browser="a", address=None)
    twofactor.trust_device(user, now, browser="b", address=None)
    first, second = db.session.execute(select(TrustedDevice).order_by(TrustedDevice.id)).scalars().all()
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    client.post(f"/settings/security/devices/{first.id}/revoke")
    assert first.revoked_at is not None and second.revoked_at is None
    client.post("/settings/security/devices/revoke-all")
    assert second.revoked_at is not None
    assert kinds(db, user).count("trusted_device_revoked") == 2


def test_sign_out_everywhere_ends_every_session(app, make, auth, db):
    user = make.user()
    here, elsewhere = app.test_client(), app.test_client()
    auth.fast_sign_in(elsewhere, user)
    auth.fast_sign_in(here, user)
    auth.fresh_code(here)
    assert here.post("/settings/security/sign-out-everywhere").headers["Location"].endswith("/sign-in")
    assert elsewhere.get("/settings/security").status_code == 302
    assert here.get("/settings/security").status_code == 302
    open_rows = db.session.execute(select(UserSession).where(UserSession.ended_at.is_(None))).all()
    assert open_rows == []


def test_turning_2sv_off_signs_out_and_forces_enrollment(client, make, auth, db, now):
    user = make.user()
    twofactor.generate_recovery_codes(user, now)
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    assert "danger" in client.get("/settings/security/turn-off").get_data(as_text=True)
    response = client.post("/settings/security/turn-off")
    assert response.headers["Location"].endswith("/sign-in")
    assert user.must_enroll_2sv and confirmed(db, user) == []
    assert db.session.execute(select(RecoveryCode)).first() is None
    assert "twofactor_disabled" in kinds(db, user) and outbox_messages("email", user.email)
    assert auth.password(client, user).headers["Location"].endswith("/sign-in/setup")


def test_settings_posts_without_csrf_are_refused_and_change_nothing(client, make, auth, db):
    user = make.user()
    method = confirmed(db, user)[0]
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    for path in (
        f"/settings/security/methods/{method.id}/remove",
        "/settings/security/turn-off",
        "/settings/security/recovery-codes",
        "/settings/security/sign-out-everywhere",
    ):
        assert client.post(path, csrf=False).status_code == 400, path
    assert confirmed(db, user) == [method] and not user.must_enroll_2sv


def test_every_auth_post_route_refuses_a_missing_csrf_token(app, client):
    # ASVS 3.5.1-style check over the URL map: no auth form works without a token
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("auth.") and "POST" in rule.methods:
            path = re.sub(r"<int:\w+>", "1", rule.rule)
            assert client.post(path, data={}, csrf=False).status_code in (400, 302), path


def test_reloading_the_confirm_page_does_not_send_another_sms_at_once(client, make, auth, add_phone):
    # ASVS 6.6.3: the resend throttle holds on the confirm page too
    user = make.user(enrolled=False)
    method = add_phone(user)
    auth.fast_sign_in(client, user)
    client.get(f"/settings/confirm?method={method.id}")
    client.get(f"/settings/confirm?method={method.id}")
    assert len(outbox_messages("sms", PHONE)) == 1


GARBAGE = {
    "code": "\x00<script>alert(1)</script>' OR 1=1 --",
    "number": "'; DROP TABLE users; --",
    "channel": "x" * 500,
    "method_id": "-1",
    "remember_device": "maybe",
    "email": "\u202e@x",
    "password": "",
    "next": "javascript:alert(1)",
    "resend": "1",
}


@pytest.mark.parametrize("state", ["visitor", "password_step", "enrolling", "signed_in"])
def test_garbage_to_every_auth_route_never_gives_a_server_error(app, make, auth, state):
    user = make.user(enrolled=state != "enrolling")
    client = app.test_client()
    if state in ("password_step", "enrolling"):
        auth.fast_password_step(client, user)
    elif state == "signed_in":
        auth.fast_sign_in(client, user)
        auth.fresh_code(client)
    app.config.update(
        RECOVERY_LIMIT_SIGN_IN="10000 per minute",
        RECOVERY_LIMIT_CODE_CHECK="10000 per minute",
        RECOVERY_LIMIT_CODE_SEND="10000 per minute",
    )
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("auth.") or rule.endpoint == "auth.sign_out":
            continue
        path = rule.rule.replace("<int:method_id>", "999999").replace("<int:device_id>", "999999")
        if "GET" in rule.methods:
            response = client.get(path + "?next=//evil.example&method=abc&recovery=%00")
            assert response.status_code < 500, path
        if "POST" in rule.methods:
            response = client.post(path + "?next=https://evil.example/", data=GARBAGE)
            assert response.status_code < 500, path
            location = response.headers.get("Location", "")
            assert location == "" or (location.startswith("/") and not location.startswith("//")), path
            assert "<script>alert" not in response.get_data(as_text=True), path  # escaped when echoed


@pytest.mark.parametrize("method_id", ["99999999999999999999", str(2**31), "²", "１２"])
def test_a_method_number_that_names_no_row_on_the_confirm_page_asks_for_the_main_way(client, make, auth, method_id):
    user = make.user(locale="en")
    auth.fast_sign_in(client, user)
    page = client.get(f"/settings/confirm?method={method_id}")
    assert page.status_code == 200
    assert 'name="code"' in page.get_data(as_text=True)  # the primary method's code, as with no choice at all
