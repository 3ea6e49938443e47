"""Passkeys as a second step: adding one (enrollment and settings, after a fresh
code), signing in with one through the same completion as every other method,
and the checks that make them phishing-resistant: the origin and relying party,
user verification, a single-use server-side challenge, and the signature
counter that refuses a cloned key. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import cbor2
import pytest
from sqlalchemy import func, select, update

from recovery_app.auth import passkeys as passkey_rules
from recovery_app.models import Passkey, PasskeyChallenge, SecurityEvent, TrustedDevice, TwoFactorMethod, UserSession
from recovery_app.models.base import utcnow
from tests.helpers import outbox_messages
from tests.passkey_device import SoftPasskey

CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"


def events(db, user, kind=None):
    query = select(SecurityEvent).where(SecurityEvent.user_id == user.id).order_by(SecurityEvent.id)
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    return db.session.execute(query).scalars().all()


def passkeys_of(db, user):
    db.session.expire_all()
    return db.session.execute(select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id)).scalars().all()


def options(client, url):
    response = client.post(url, headers={"X-CSRFToken": client.csrf_token()}, csrf=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def add_in_settings(auth, user, device=None, *, name="My laptop"):
    """Add a passkey through the real settings pages (with a fresh code); returns the device and the client."""
    device = device or SoftPasskey()
    client = auth.client_for(user, fresh_code=True)
    answer = device.create(options(client, "/settings/security/passkey/options"))
    response = client.post("/settings/security/passkey", data={"name": name, "credential": answer})
    assert response.status_code == 302, response.get_data(as_text=True)
    return device, client


def sign_in_with(client, auth, user, device, **bend):
    """Password, then the passkey answer to the options the challenge page asks for."""
    auth.password(client, user)
    answer = device.get(options(client, "/sign-in/passkey/options"), **bend)
    return client.post("/sign-in/code", data={"credential": answer})


def signed_in(client) -> bool:
    return client.get("/settings/security").status_code == 200


# --- adding a passkey -------------------------------------------------------------------


def test_a_seller_adds_a_passkey_in_settings_after_a_fresh_code(db, make, auth):
    # ASVS 7.5.1: a fresh second factor before a method is added; 6.3.7: told by e-mail
    user = make.user(locale="en")
    stale = auth.client_for(user)
    response = stale.get("/settings/security/passkey")
    assert response.status_code == 302 and "/settings/confirm" in response.location
    assert (
        stale.post(
            "/settings/security/passkey/options", headers={"X-CSRFToken": stale.csrf_token()}, csrf=False
        ).status_code
        == 302
    )
    device, client = add_in_settings(auth, user, name="  Work   laptop ")
    [passkey] = passkeys_of(db, user)
    assert passkey.name == "Work laptop" and passkey.credential_id == device.credential_id
    assert passkey.transports == "internal,hybrid" and passkey.last_used_at is None
    page = client.get("/settings/security").get_data(as_text=True)
    assert "Work laptop" in page and "not used yet" in page and f"/passkeys/{passkey.id}/remove" in page
    assert [e.details["name"] for e in events(db, user, "passkey_added")] == ["Work laptop"]
    notice = outbox_messages("email", user.email)[-1]
    assert "A passkey was added." in notice.body or "パスキーが追加されました。" in notice.body


def test_registration_options_require_user_verification_and_name_this_site(app, make, auth):
    user = make.user(locale="en")
    add_in_settings(auth, user)
    client = auth.client_for(user, fresh_code=True)
    sent = options(client, "/settings/security/passkey/options")
    assert sent["rp"] == {"id": "localhost", "name": "Recovery Desk"}
    assert sent["authenticatorSelection"]["userVerification"] == "required"
    assert len(sent["excludeCredentials"]) == 1  # the same device is not added twice
    assert user.email == sent["user"]["name"] and str(user.id) != sent["user"]["id"]
    # ASVS 6.7.2: the challenge nonce is at least 64 bits (here 256) and random
    assert (
        len(sent["challenge"]) >= 43
        and sent["challenge"] != options(client, "/settings/security/passkey/options")["challenge"]
    )


def test_the_default_name_is_the_browser_and_system(db, make, auth):
    user = make.user(locale="en")
    client = auth.client_for(user, fresh_code=True)
    client.environ_base["HTTP_USER_AGENT"] = CHROME_LINUX
    assert 'value="Chrome / Linux"' in client.get("/settings/security/passkey").get_data(as_text=True)
    answer = SoftPasskey().create(options(client, "/settings/security/passkey/options"))
    client.post("/settings/security/passkey", data={"name": "", "credential": answer})
    assert [p.name for p in passkeys_of(db, user)] == ["Chrome / Linux"]


def test_a_passkey_without_user_verification_is_not_added(db, make, auth):
    user = make.user(locale="en")
    client = auth.client_for(user, fresh_code=True)
    answer = SoftPasskey(user_verified=False).create(options(client, "/settings/security/passkey/options"))
    page = client.post("/settings/security/passkey", data={"name": "x", "credential": answer}).get_data(as_text=True)
    assert "screen lock" in page and passkeys_of(db, user) == []


def test_a_passkey_made_for_another_site_is_not_added(db, make, auth):
    user = make.user(locale="en")
    client = auth.client_for(user, fresh_code=True)
    answer = SoftPasskey(origin="https://desk.example.invalid").create(
        options(client, "/settings/security/passkey/options")
    )
    assert client.post("/settings/security/passkey", data={"name": "x", "credential": answer}).status_code == 200
    assert passkeys_of(db, user) == []


def test_a_new_seller_can_enroll_with_a_passkey_alone(db, make, auth):
    # ASVS 6.3.3: the session starts only after the passkey is proved and recovery codes are made
    user = make.user(enrolled=False, locale="en")
    client = auth.app.test_client()
    auth.password(client, user)
    assert "/sign-in/setup/passkey" in client.get("/sign-in/setup").get_data(as_text=True)
    assert "Passkey" in client.get("/sign-in/setup/passkey").get_data(as_text=True)
    answer = SoftPasskey().create(options(client, "/sign-in/setup/passkey/options"))
    response = client.post("/sign-in/setup/passkey", data={"name": "Phone", "credential": answer})
    assert response.status_code == 302 and response.location.endswith("/sign-in/setup")
    assert "the passkey “Phone”" in client.get("/sign-in/setup").get_data(as_text=True)
    assert not signed_in(client)
    client.post("/sign-in/setup/skip-backup")
    assert client.post("/sign-in/setup/recovery-codes").status_code == 200
    assert client.post("/sign-in/setup/finish").status_code == 302
    assert signed_in(client)
    assert [e.details["methods"] for e in events(db, user, "enrolled")] == [["passkey"]]


def test_a_malformed_answer_changes_nothing(db, make, auth):
    user = make.user(locale="en")
    client = auth.client_for(user, fresh_code=True)
    options(client, "/settings/security/passkey/options")
    for garbage in ("not json", json.dumps({"id": "x"}), "{" * 30000):
        page = client.post("/settings/security/passkey", data={"name": "x", "credential": garbage})
        assert page.status_code == 200 and "did not send an answer" in page.get_data(as_text=True)
    assert passkeys_of(db, user) == []
    assert db.session.execute(select(func.count()).select_from(PasskeyChallenge)).scalar_one() == 1


BACKUP_STATE, BACKUP_ELIGIBLE = 0x10, 0x08
RSA_KEY_WITH_NO_MODULUS = cbor2.dumps({1: 3, 3: -257, -1: b"\x00", -2: b"\x01\x00\x01"})


@pytest.mark.parametrize(
    "craft",
    [
        {"flags": BACKUP_STATE},  # backed up, yet not eligible for backup
        {"fmt": "packed", "statement": {"alg": -7, "sig": b"junk", "x5c": [b"not a certificate"]}},
        {
            "fmt": "tpm",
            "statement": {"ver": "2.0", "alg": -257, "x5c": [b"x"], "sig": b"s", "certInfo": b"c", "pubArea": b"p"},
        },
        {"fmt": "android-safetynet", "statement": {"ver": "1", "response": b"a.b.c"}},
        {"fmt": "fido-u2f", "statement": {"sig": b"s", "x5c": [b"x"]}},
        {"cose_key": cbor2.dumps([1, 2, 3])},
        {"cose_key": RSA_KEY_WITH_NO_MODULUS},  # parses, but no key can be made of it
    ],
    ids=["flags", "packed", "tpm", "safetynet", "u2f", "key-not-a-map", "rsa-no-modulus"],
)
def test_a_crafted_answer_is_refused_with_a_message_and_adds_nothing(db, make, auth, craft):
    user = make.user(locale="en")
    client = auth.client_for(user, fresh_code=True)
    answer = SoftPasskey().create(options(client, "/settings/security/passkey/options"), **craft)
    page = client.post("/settings/security/passkey", data={"name": "x", "credential": answer})
    assert page.status_code == 200 and "could not be checked" in page.get_data(as_text=True)
    assert passkeys_of(db, user) == []


def test_a_crafted_answer_at_sign_in_is_refused_like_a_wrong_code(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    page = sign_in_with(client, auth, user, device, flags=BACKUP_STATE)
    assert page.status_code == 200 and "could not be checked" in page.get_data(as_text=True)
    assert not signed_in(client) and [e.details.get("method") for e in events(db, user, "code_failed")] == ["passkey"]


# --- signing in with a passkey ----------------------------------------------------------------


def test_the_challenge_asks_for_the_passkey_first_and_sends_no_code(db, make, auth, add_phone):
    user = make.user(enrolled=False, locale="en")
    add_phone(user)
    add_in_settings(auth, user)
    sms_before = len(outbox_messages("sms"))
    client = auth.app.test_client()
    auth.password(client, user)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert "<h1>Use your passkey</h1>" in page and 'data-passkey="get"' in page and 'name="code"' not in page
    assert "js/passkeys.js" in page and "<script>" not in page  # a static script, no inline one (CSP)
    assert "Didn&#39;t get a code?" in page or "Didn't get a code?" in page
    assert len(outbox_messages("sms")) == sms_before  # no text message while the passkey is asked for
    backups = client.get("/sign-in/other-ways").get_data(as_text=True)
    assert "Send a new text message" in backups and "Use your passkey" not in backups
    client.post("/sign-in/other-ways", data={"method_id": str(user_methods(db, user)[0].id), "channel": "sms"})
    assert len(outbox_messages("sms")) == sms_before + 1
    assert 'name="code"' in client.get("/sign-in/code").get_data(as_text=True)
    assert "Use your passkey" in client.get("/sign-in/other-ways").get_data(as_text=True)
    client.post("/sign-in/other-ways", data={"method_id": "passkey"})
    assert 'data-passkey="get"' in client.get("/sign-in/code").get_data(as_text=True)


def user_methods(db, user):
    return db.session.execute(select(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id)).scalars().all()


def test_a_passkey_signs_in_through_the_same_completion_as_a_code(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = CHROME_LINUX
    auth.password(client, user)
    answer = device.get(options(client, "/sign-in/passkey/options"))
    response = client.post("/sign-in/code", data={"credential": answer, "remember_device": "y"})
    assert response.status_code == 302 and signed_in(client)
    [passkey] = passkeys_of(db, user)
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    [event] = events(db, user, "signed_in")
    assert event.details == {"via": "passkey"}
    assert user.last_sign_in_browser == CHROME_LINUX
    # what complete_sign_in does for every method happens for a passkey too: a trusted device, a new session
    assert (
        db.session.execute(
            select(func.count()).select_from(TrustedDevice).where(TrustedDevice.user_id == user.id)
        ).scalar_one()
        == 1
    )
    assert (
        db.session.execute(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.user_id == user.id, UserSession.browser == CHROME_LINUX)
        ).scalar_one()
        == 1
    )
    assert "last used" in client.get("/settings/security").get_data(as_text=True)


def test_an_answer_is_accepted_once(db, make, auth):
    # ASVS 6.5.1: the challenge is consumed by the first answer; a replay finds nothing
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    auth.password(client, user)
    answer = device.get(options(client, "/sign-in/passkey/options"))
    with client.session_transaction() as sess:
        kept = dict(sess)
    assert client.post("/sign-in/code", data={"credential": answer}).status_code == 302
    replay = auth.app.test_client()
    with replay.session_transaction() as sess:
        sess.update(kept)  # the same browser state, copied before the sign-in
    auth.password(replay, user)
    with replay.session_transaction() as sess:
        sess["passkey_challenge_sign_in"] = kept["passkey_challenge_sign_in"]
    page = replay.post("/sign-in/code", data={"credential": answer}).get_data(as_text=True)
    assert "expired or was already used" in page and not signed_in(replay)


def test_an_expired_challenge_is_refused(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    auth.password(client, user)
    answer = device.get(options(client, "/sign-in/passkey/options"))
    db.session.execute(update(PasskeyChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    page = client.post("/sign-in/code", data={"credential": answer}).get_data(as_text=True)
    assert "expired or was already used" in page and not signed_in(client)
    assert db.session.execute(select(func.count()).select_from(PasskeyChallenge)).scalar_one() == 0


@pytest.mark.parametrize(
    "bend",
    [
        {"origin": "https://recovery-desk.example.invalid"},
        {"origin": "http://localhost:5001"},
        {"rp_id": "example.invalid"},
    ],
)
def test_an_answer_from_another_origin_or_site_is_refused(db, make, auth, bend):
    # Phishing resistance: the signed client data names the page's origin
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    page = sign_in_with(client, auth, user, device, **bend).get_data(as_text=True)
    assert "only on this site" in page and not signed_in(client)
    assert [e.details["method"] for e in events(db, user, "code_failed")] == ["passkey"]
    assert events(db, user, "signed_in") == []


def test_a_passkey_that_does_not_verify_the_user_is_refused(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    device.user_verified = False
    client = auth.app.test_client()
    assert sign_in_with(client, auth, user, device).status_code == 200 and not signed_in(client)


def test_a_signature_from_another_key_is_refused(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    impostor = SoftPasskey()
    impostor.credential_id = device.credential_id  # the id is not secret; the key is
    client = auth.app.test_client()
    assert sign_in_with(client, auth, user, impostor).status_code == 200 and not signed_in(client)


def test_a_counter_going_backwards_is_refused_and_recorded(db, make, auth):
    # A cloned authenticator shows a counter at or below one already seen
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    assert sign_in_with(client, auth, user, device).status_code == 302  # counter 1
    other = auth.app.test_client()
    page = sign_in_with(other, auth, user, device, counter=1).get_data(as_text=True)
    assert "looks like a copy" in page and not signed_in(other)
    [event] = events(db, user, "passkey_counter_backwards")
    assert event.details["counter"] == "1 after 1" and event.address is not None
    [passkey] = passkeys_of(db, user)
    assert passkey.sign_count == 1
    assert sign_in_with(auth.app.test_client(), auth, user, device).status_code == 302  # the real one goes on


def test_a_counter_anywhere_in_its_32_bits_is_kept(db, make, auth):
    # WebAuthn's counter is an unsigned 32-bit number; PostgreSQL's INTEGER stops at 2**31 - 1.
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user, SoftPasskey(sign_count=2**31))
    client = auth.app.test_client()
    assert sign_in_with(client, auth, user, device, counter=2**32 - 1).status_code == 302 and signed_in(client)
    assert passkeys_of(db, user)[0].sign_count == 2**32 - 1


def test_an_authenticator_without_a_counter_keeps_working(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    for _ in range(2):
        assert sign_in_with(auth.app.test_client(), auth, user, device, counter=0).status_code == 302
    assert passkeys_of(db, user)[0].sign_count == 0


def test_a_passkey_of_another_user_is_refused(db, make, auth):
    owner, other = make.user(locale="en"), make.user(locale="en")
    device, _ = add_in_settings(auth, owner)
    add_in_settings(auth, other)
    client = auth.app.test_client()
    page = sign_in_with(client, auth, other, device).get_data(as_text=True)
    assert "not set up for your user" in page and not signed_in(client)


def test_refused_passkeys_count_towards_the_code_lock(db, make, auth, roomy_limits):
    # ASVS 6.3.1: the same 10-tries pause as wrong codes
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    auth.password(client, user)
    for _ in range(10):
        answer = device.get(options(client, "/sign-in/passkey/options"), origin="https://elsewhere.invalid")
        client.post("/sign-in/code", data={"credential": answer})
    db.session.expire_all()
    assert user.code_locked_until is not None
    answer = device.get(options(client, "/sign-in/passkey/options"))
    assert client.post("/sign-in/code", data={"credential": answer}).status_code == 200 and not signed_in(client)


# --- removing ---------------------------------------------------------------------------------


def test_a_removed_passkey_is_refused(db, make, auth):
    # ASVS 6.5.6: a lost passkey is removed in settings and stops working at once
    user = make.user(locale="en")
    lost, client = add_in_settings(auth, user, name="Lost phone")
    add_in_settings(auth, user, name="Laptop")
    signing_in = auth.app.test_client()
    auth.password(signing_in, user)
    answer = lost.get(options(signing_in, "/sign-in/passkey/options"))
    first = passkeys_of(db, user)[0]
    stale = auth.client_for(user)
    assert stale.post(f"/settings/security/passkeys/{first.id}/remove").status_code == 302
    assert len(passkeys_of(db, user)) == 2  # no fresh code: nothing removed
    response = client.post(f"/settings/security/passkeys/{first.id}/remove")
    assert response.status_code == 302
    assert [p.name for p in passkeys_of(db, user)] == ["Laptop"]
    page = signing_in.post("/sign-in/code", data={"credential": answer}).get_data(as_text=True)
    assert "not set up for your user, or it was removed" in page and not signed_in(signing_in)
    assert [e.details["name"] for e in events(db, user, "passkey_removed")] == ["Lost phone"]
    assert (
        "A passkey was removed." in outbox_messages("email", user.email)[-1].body
        or "パスキーが削除されました。" in outbox_messages("email", user.email)[-1].body
    )


def test_the_only_second_step_cannot_be_removed(db, make, auth):
    user = make.user(locale="en")
    add_in_settings(auth, user)
    client = auth.client_for(user, fresh_code=True)
    [method] = user_methods(db, user)
    assert client.post(f"/settings/security/methods/{method.id}/remove").status_code == 302
    assert user_methods(db, user) == []  # the passkey is left, so the app can go
    [passkey] = passkeys_of(db, user)
    client.post(f"/settings/security/passkeys/{passkey.id}/remove")
    assert passkeys_of(db, user) == [passkey]
    assert "only second step" in client.get("/settings/security").get_data(as_text=True)


def test_turning_2sv_off_removes_passkeys(db, make, auth):
    user = make.user(locale="en")
    add_in_settings(auth, user)
    client = auth.client_for(user, fresh_code=True)
    assert client.post("/settings/security/turn-off").status_code == 302
    assert passkeys_of(db, user) == []


def test_another_users_passkey_cannot_be_removed(db, make, auth):
    owner, other = make.user(locale="en"), make.user(locale="en")
    add_in_settings(auth, owner)
    [passkey] = passkeys_of(db, owner)
    client = auth.client_for(other, fresh_code=True)
    client.post(f"/settings/security/passkeys/{passkey.id}/remove")
    assert passkeys_of(db, owner) == [passkey]


# --- the fresh second step before a settings change ----------------------------------------------


def test_a_passkey_confirms_a_settings_change(db, make, auth):
    # ASVS 7.5.1 with a phishing-resistant factor
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    client = auth.client_for(user)
    page = client.get("/settings/confirm?next=/settings/security").get_data(as_text=True)
    assert 'data-passkey="get"' in page and "Authenticator app" in page  # the passkey first, the others below
    answer = device.get(options(client, "/settings/confirm/passkey/options"))
    response = client.post("/settings/confirm?next=/settings/security", data={"credential": answer})
    assert response.status_code == 302 and response.location.endswith("/settings/security")
    assert client.get("/settings/security/passkey").status_code == 200  # fresh now
    other = auth.client_for(user)
    other.get("/settings/confirm")
    replayed = other.post("/settings/confirm", data={"credential": answer})
    assert replayed.status_code == 200 and other.get("/settings/security/passkey").status_code == 302


def test_passkeys_are_not_offered_at_an_ip_address(app, make, auth):
    app.config["RECOVERY_BASE_URL"] = "http://127.0.0.1:5000"
    user = make.user(locale="en")
    client = auth.client_for(user, fresh_code=True)
    assert '/settings/security/passkey"' not in client.get("/settings/security").get_data(as_text=True)
    refused = client.post(
        "/settings/security/passkey/options", headers={"X-CSRFToken": client.csrf_token()}, csrf=False
    )
    assert refused.status_code == 400 and "domain name" in refused.get_json()["error"]


def test_the_relying_party_comes_from_the_base_url(app):
    with app.test_request_context():
        app.config["RECOVERY_BASE_URL"] = "https://desk.example.com/"
        assert passkey_rules.relying_party() == ("desk.example.com", "https://desk.example.com")
        app.config["RECOVERY_BASE_URL"] = "http://localhost:8080"
        assert passkey_rules.relying_party() == ("localhost", "http://localhost:8080")
        assert passkey_rules.available()
        app.config["RECOVERY_BASE_URL"] = "http://[::1]:5000"
        assert not passkey_rules.available()


def test_the_pages_read_japanese(make, auth):
    user = make.user(locale="ja")
    device, _ = add_in_settings(auth, user)
    client = auth.app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    auth.password(client, user)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert "パスキーを使う" in page and "コードが届きませんか？" in page
    settings = auth.client_for(user).get("/settings/security").get_data(as_text=True)
    assert "パスキー" in settings and "パスキーを追加" in settings


def test_two_browsers_signing_in_at_once_keep_their_own_challenges(db, make, auth):
    user = make.user(locale="en")
    device, _ = add_in_settings(auth, user)
    laptop, phone = auth.app.test_client(), auth.app.test_client()
    auth.password(laptop, user)
    auth.password(phone, user)
    options(laptop, "/sign-in/passkey/options")  # asked twice: the first challenge of this browser is dropped
    laptop_answer = device.get(options(laptop, "/sign-in/passkey/options"))
    phone_answer = device.get(options(phone, "/sign-in/passkey/options"))
    assert (
        db.session.execute(
            select(func.count()).select_from(PasskeyChallenge).where(PasskeyChallenge.purpose == "sign_in")
        ).scalar_one()
        == 2
    )
    assert laptop.post("/sign-in/code", data={"credential": laptop_answer}).status_code == 302
    assert phone.post("/sign-in/code", data={"credential": phone_answer}).status_code == 302


def test_the_challenge_moves_on_when_the_passkey_was_removed_meanwhile(db, make, auth):
    user = make.user(locale="en")
    add_in_settings(auth, user)
    client = auth.app.test_client()
    auth.password(client, user)
    assert 'data-passkey="get"' in client.get("/sign-in/code").get_data(as_text=True)
    db.session.execute(Passkey.__table__.delete().where(Passkey.user_id == user.id))
    db.session.commit()
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert 'data-passkey="get"' not in page and 'name="code"' in page


@pytest.mark.parametrize("role", ["reviewer", "manager"])
def test_staff_add_and_sign_in_with_a_passkey(db, make, auth, role):
    user = make.user(role, locale="en")
    device, _ = add_in_settings(auth, user, name="Office key")
    client = auth.app.test_client()
    assert sign_in_with(client, auth, user, device).status_code == 302 and signed_in(client)
    assert [p.name for p in passkeys_of(db, user)] == ["Office key"]
