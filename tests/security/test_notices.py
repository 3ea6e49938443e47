"""The user is told by e-mail, never with a code in it, after every change to
how they sign in and after suspicious attempts (ASVS 6.3.5, 6.3.7, 6.6.1)."""

from __future__ import annotations

import re

import pytest
from flask import current_app

from recovery_app.auth import services, twofactor
from tests.factories import Factory
from tests.helpers import TEST_PASSWORD, last_code, outbox_messages

PHONE = "+819087654321"
CODE_LIKE = re.compile(r"(?<![\d:/.-])\d{6}(?![\d:/.-])|\b[a-z0-9]{5}-[a-z0-9]{5}\b")


def no_code_in(message) -> bool:
    return CODE_LIKE.search(message.subject + "\n" + message.body) is None


def _add_phone(client, user):
    client.post("/settings/security/phone", data={"number": "090-8765-4321", "channel": "sms"})
    return client.post("/settings/security/phone/confirm", data={"code": last_code(PHONE)})


def _second_method(user, _db):
    return Factory(current_app).add_phone(user, PHONE, primary=False)


CHANGES = {
    "method_added": lambda client, user, db: _add_phone(client, user),
    "method_primary_changed": lambda client, user, db: client.post(
        f"/settings/security/methods/{_second_method(user, db).id}/primary"
    ),
    "method_removed": lambda client, user, db: client.post(
        f"/settings/security/methods/{_second_method(user, db).id}/remove"
    ),
    "recovery_codes_generated": lambda client, user, db: client.post("/settings/security/recovery-codes"),
    "trusted_device_revoked": lambda client, user, db: (
        twofactor.trust_device(user, user.created_at, browser="Firefox", address="192.0.2.1"),
        client.post("/settings/security/devices/revoke-all"),
    )[1],
    "twofactor_disabled": lambda client, user, db: client.post("/settings/security/turn-off"),
    "password_changed": lambda client, user, db: client.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "password": "velvet harbour kettle 5521",
            "confirm": "velvet harbour kettle 5521",
        },
    ),
    "email_changed": lambda client, user, db: client.post(
        "/account/email", data={"email": "moved.person@example.test"}
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_to_sign_in_details_sends_a_notice_without_a_code(app, client, make, auth, db, change):
    # ASVS 6.3.7
    user = make.user(locale="en", email="notice.person@example.test")
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    before = len(outbox_messages("email", "notice.person@example.test"))
    response = CHANGES[change](client, user, db)
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:500]
    notices = outbox_messages("email", "notice.person@example.test")[before:]
    assert notices, f"no notice after {change}"
    assert all(no_code_in(message) for message in outbox_messages("email")), "a code went by e-mail"


def test_a_sign_in_from_a_new_device_is_told(app, make, auth):
    # ASVS 6.3.5: a sign-in from a browser never seen before
    user = make.user(locale="en")
    user.last_sign_in_at = user.created_at
    auth.sign_in(app.test_client(), user)
    notices = [m for m in outbox_messages("email", user.email) if m.template == "auth/email/new_device"]
    assert len(notices) == 1 and no_code_in(notices[0])


def test_wrong_codes_after_a_right_password_warn_the_user_once(app, make, now, roomy_limits):
    # ASVS 6.3.5: the password is known to someone; the third wrong code says so
    user = make.user(locale="en")
    challenge = services.Challenge(id="c", method_id=twofactor.primary_method(user).id)
    for _ in range(5):
        try:
            services.verify_code(user, challenge, "000000", now, address="198.51.100.9", browser="curl/8")
        except services.AuthError:
            pass
    warnings = [m for m in outbox_messages("email", user.email) if m.template == "auth/email/suspicious_attempt"]
    assert len(warnings) == 1 and "198.51.100.9" in warnings[0].body and no_code_in(warnings[0])


def test_codes_go_only_to_the_confirmed_phone_never_by_e_mail(app, client, make, auth, add_phone):
    # ASVS 6.6.1: an SMS code reaches only a number already confirmed
    user = make.user(enrolled=False, locale="en")
    add_phone(user, PHONE)
    auth.password(client, user)
    assert [m.to for m in outbox_messages() if m.channel == "sms"] == [PHONE]
    assert outbox_messages("email") == []


def test_phone_set_up_explains_the_risk_and_offers_the_app(app, client, make, auth):
    # ASVS 6.6.1: the stronger authenticator offered, the risk of SMS said
    user = make.user(enrolled=False, locale="en")
    auth.fast_password_step(client, user)
    choice = client.get("/sign-in/setup").get_data(as_text=True)
    assert "Authenticator app" in choice and "Recommended" in choice
    page = client.get("/sign-in/setup/phone").get_data(as_text=True)
    assert "An authenticator app is safer" in page and "redirected" in page
