"""Forced 2SV enrollment after the password step, through the real forms."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from recovery_app.models import RecoveryCode, TwoFactorMethod
from tests.helpers import last_code, outbox_messages

MOBILE = "090-1234-5678"
MOBILE_E164 = "+819012345678"
LANDLINE = "03-1234-5678"


def setup_key(page_text: str) -> str:
    found = re.search(r'id="setup-key">(.*?)</p>', page_text, re.S)
    return re.sub(r"<[^>]+>|\s", "", found.group(1))


def methods(db, user, confirmed=True):
    query = select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id)
    if confirmed:
        query = query.where(TwoFactorMethod.confirmed_at.is_not(None))
    return db.session.execute(query).scalars().all()


def enroll_app(client, path="/sign-in/setup/app"):
    page = client.get(path).get_data(as_text=True)
    key = setup_key(page)
    response = client.post(path, data={"code": pyotp.TOTP(key).now()})
    assert response.status_code == 302, response.get_data(as_text=True)
    return key


def test_user_without_2sv_is_sent_to_enrollment_and_nowhere_else(client, make, auth):
    user = make.user(enrolled=False)
    response = auth.password(client, user)
    assert response.headers["Location"].endswith("/sign-in/setup")
    assert client.get("/sign-in/code").headers["Location"].endswith("/sign-in/setup")
    assert client.get("/settings/security").status_code == 302
    assert client.get("/").status_code == 302


def test_enrollment_page_is_unreachable_without_the_password_step(client):
    assert client.get("/sign-in/setup").headers["Location"].endswith("/sign-in")
    assert client.get("/sign-in/setup/app").headers["Location"].endswith("/sign-in")


def test_authenticator_enrollment_shows_a_qr_svg_and_the_key(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    page = client.get("/sign-in/setup/app").get_data(as_text=True)
    assert "<svg" in page and "<script>" not in page and "style=" not in page
    key = setup_key(page)
    assert len(key) == 32
    # a reload keeps the same key, so a scanned code still works
    assert setup_key(client.get("/sign-in/setup/app").get_data(as_text=True)) == key
    stored = methods(db, user, confirmed=False)[0]
    assert key.encode() not in stored.secret_encrypted  # seeds are encrypted at rest


def test_full_enrollment_with_an_app_then_recovery_codes(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    enroll_app(client)
    assert "/sign-in/setup/skip-backup" in client.get("/sign-in/setup").get_data(as_text=True)
    client.post("/sign-in/setup/skip-backup")
    page = client.get("/sign-in/setup").get_data(as_text=True)
    assert "e-mail" in page.lower()  # says why codes never come by e-mail
    codes_page = client.post("/sign-in/setup/recovery-codes").get_data(as_text=True)
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", codes_page)
    assert len(codes) == 10 and 'download="recovery-codes.txt"' in codes_page
    stored = db.session.execute(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).scalars().all()
    assert len(stored) == 10 and all(code not in row.code_hash for row in stored for code in codes)  # ASVS 6.5.2
    response = client.post("/sign-in/setup/finish")
    assert response.status_code == 302
    assert user.must_enroll_2sv is False
    assert client.get("/settings/security").status_code == 200
    notices = outbox_messages("email", user.email)
    assert notices and not any(code in n.body for n in notices for code in codes)


def test_enrollment_cannot_finish_without_recovery_codes(client, make, auth):
    user = make.user(enrolled=False)
    auth.password(client, user)
    enroll_app(client)
    response = client.post("/sign-in/setup/finish")
    assert response.headers["Location"].endswith("/sign-in/setup")
    assert user.must_enroll_2sv is True


def test_wrong_code_at_app_enrollment_changes_nothing(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    client.get("/sign-in/setup/app")
    for bad in ("000000", "abc123", ""):
        response = client.post("/sign-in/setup/app", data={"code": bad})
        assert response.status_code == 200 and 'class="field-error"' in response.get_data(as_text=True)
    assert methods(db, user) == []


def test_phone_enrollment_by_sms_stores_e164(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    response = client.post("/sign-in/setup/phone", data={"number": MOBILE, "channel": "sms"})
    assert response.headers["Location"].endswith("/sign-in/setup/phone/confirm")
    assert outbox_messages("email") == [] and outbox_messages("sms", MOBILE_E164)
    response = client.post("/sign-in/setup/phone/confirm", data={"code": last_code(MOBILE_E164)})
    assert response.status_code == 302
    [method] = methods(db, user)
    assert method.kind == "sms" and method.phone_e164 == MOBILE_E164 and method.is_primary


def test_landline_can_take_voice_calls_but_not_sms(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    refused = client.post("/sign-in/setup/phone", data={"number": LANDLINE, "channel": "sms"})
    assert refused.status_code == 200 and "mobile" in refused.get_data(as_text=True)
    assert outbox_messages() == []
    client.post("/sign-in/setup/phone", data={"number": LANDLINE, "channel": "voice"})
    assert outbox_messages("voice", "+81312345678")
    client.post("/sign-in/setup/phone/confirm", data={"code": last_code("+81312345678")})
    assert methods(db, user)[0].kind == "voice"


def test_unparseable_phone_numbers_are_refused_with_a_message(client, make, auth, db, roomy_limits):
    user = make.user(enrolled=False)
    auth.password(client, user)
    for bad in ("hello", "12", "+999 123", "0" * 41, ""):
        response = client.post("/sign-in/setup/phone", data={"number": bad, "channel": "sms"})
        assert response.status_code == 200 and 'class="field-error"' in response.get_data(as_text=True), bad
    bogus_channel = client.post("/sign-in/setup/phone", data={"number": MOBILE, "channel": "pigeon"})
    assert bogus_channel.status_code == 200 and 'class="field-error"' in bogus_channel.get_data(as_text=True)
    assert methods(db, user, confirmed=False) == [] and outbox_messages() == []


def test_expired_enrollment_sms_code_is_refused(client, make, auth, db, now):
    from recovery_app.models import SentCode

    user = make.user(enrolled=False)
    auth.password(client, user)
    client.post("/sign-in/setup/phone", data={"number": MOBILE, "channel": "sms"})
    sent = db.session.execute(select(SentCode)).scalar_one()
    sent.expires_at = sent.created_at  # ASVS 6.5.5: ten minutes at most
    db.session.flush()
    response = client.post("/sign-in/setup/phone/confirm", data={"code": last_code(MOBILE_E164)})
    assert response.status_code == 200 and "expired" in response.get_data(as_text=True)
    assert methods(db, user) == []


def test_enrollment_resend_is_throttled(client, make, auth):
    # ASVS 6.6.3
    user = make.user(enrolled=False)
    auth.password(client, user)
    client.post("/sign-in/setup/phone", data={"number": MOBILE, "channel": "sms"})
    response = client.post("/sign-in/setup/phone/confirm", data={"resend": "1"})
    assert response.status_code == 200 and "seconds" in response.get_data(as_text=True)
    assert len(outbox_messages("sms")) == 1


def test_backup_phone_after_the_app_and_primary_stays_the_app(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    enroll_app(client)
    client.post("/sign-in/setup/phone", data={"number": MOBILE, "channel": "sms"})
    client.post("/sign-in/setup/phone/confirm", data={"code": last_code(MOBILE_E164)})
    kinds = {m.kind: m.is_primary for m in methods(db, user)}
    assert kinds == {"totp": True, "sms": False}
    assert "/sign-in/setup/recovery-codes" in client.get("/sign-in/setup").get_data(as_text=True)


def test_enrolled_user_cannot_reenter_enrollment(client, make, auth):
    user = make.user()
    auth.password(client, user)
    assert client.get("/sign-in/setup").headers["Location"].endswith("/sign-in/code")
    assert client.post("/sign-in/setup/finish").headers["Location"].endswith("/sign-in")


def test_user_left_without_methods_is_sent_to_enrollment(client, make, auth, db):
    # ASVS 6.3.3: no sign-in without a second factor, whatever the flag says
    user = make.user()
    for method in methods(db, user):
        db.session.delete(method)
    db.session.flush()
    assert auth.password(client, user).headers["Location"].endswith("/sign-in/setup")
    assert user.must_enroll_2sv is True
