"""Forgot password: a single-use link for an hour; never a way around 2SV (issue 2 item 7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recovery_app.auth.passwords import verify_password
from recovery_app.models import ActionToken, SecurityEvent, UserSession
from tests.account.conftest import SIGN_IN_PATH, link_in_last_email
from tests.helpers import TEST_PASSWORD, outbox_messages

NEW_PASSWORD = "quiet lantern orchard 9107"
RESET_PATH = "/account/password/reset/"
FORGOT = "/account/password/forgot"


def _forgot(client, email, **kwargs):
    return client.post(FORGOT, data={"email": email}, headers={"Accept-Language": "en"}, **kwargs)


def _without_timing(text: str) -> str:
    # The page is the same for every address; only the CSRF token in it changes.
    import re

    return re.sub(r'name="csrf_token"[^>]*>', "", text)


def test_reset_journey_sets_the_password_and_ends_every_session_but_keeps_2sv(app, db, client, auth, make):
    # ASVS 6.4.1, 6.4.3: the reset signs nobody in; the next sign-in still needs a code
    user = make.user(locale="en")
    elsewhere = app.test_client()
    auth.fast_sign_in(elsewhere, user)
    epoch = user.session_epoch
    page = _forgot(client, user.email.upper())
    assert page.status_code == 200 and "Check your e-mail" in page.get_data(as_text=True)
    message = outbox_messages("email", user.email)[-1]
    assert message.template == "account/email/password_reset" and message.locale == "en"
    path = link_in_last_email(user.email, RESET_PATH)
    stored = db.session.execute(select(ActionToken).where(ActionToken.user_id == user.id)).scalar_one()
    assert stored.expires_at - stored.created_at == timedelta(minutes=60)

    form = client.get(path).get_data(as_text=True)
    assert 'autocomplete="new-password"' in form and f'value="{user.email}" autocomplete="username"' in form
    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith(SIGN_IN_PATH)
    db.session.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.session_epoch == epoch + 1 and not user.must_enroll_2sv
    with client.session_transaction() as sess:
        assert "_user_id" not in sess and "pending" not in sess
    live = db.session.execute(
        select(func.count())
        .select_from(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    ).scalar_one()
    assert live == 0
    assert elsewhere.get("/account/password").headers["Location"].startswith(SIGN_IN_PATH)
    assert outbox_messages("email", user.email)[-1].template == "account/email/password_changed"
    kinds = set(db.session.execute(select(SecurityEvent.kind).where(SecurityEvent.user_id == user.id)).scalars())
    assert {"password_reset_requested", "password_changed"} <= kinds


def test_unknown_address_gets_the_same_page_and_a_notice_without_a_link(app, db, client, make):
    # ASVS 6.3.8: same message and status whether or not the address has a login
    user = make.user()
    known = _forgot(client, user.email)
    unknown = _forgot(app.test_client(), "nobody@example.test")
    assert known.status_code == unknown.status_code == 200
    assert _without_timing(known.get_data(as_text=True)) == _without_timing(unknown.get_data(as_text=True))
    (notice,) = outbox_messages("email", "nobody@example.test")
    assert notice.template == "account/email/password_reset_no_login" and notice.locale == "en"
    assert RESET_PATH not in notice.body


def test_a_removed_user_gets_the_same_page_and_no_link(client, db, make, now):
    user = make.user()
    user.disabled_at = now
    db.session.flush()
    assert _forgot(client, user.email).status_code == 200
    assert [m.template for m in outbox_messages("email", user.email)] == ["account/email/password_reset_no_login"]


def test_reused_reset_link_gets_the_clear_page_and_changes_nothing(app, db, client, make):
    user = make.user()
    _forgot(client, user.email)
    path = link_in_last_email(user.email, RESET_PATH)
    client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    again = client.post(
        path,
        data={"password": "another fine password 77", "confirm": "another fine password 77"},
        headers={"Accept-Language": "en"},
    )
    assert again.status_code == 404 and "This link cannot be used" in again.get_data(as_text=True)
    db.session.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)


def test_expired_reset_link_is_refused(app, db, client, make):
    user = make.user()
    _forgot(client, user.email)
    path = link_in_last_email(user.email, RESET_PATH)
    stored = db.session.execute(select(ActionToken).where(ActionToken.user_id == user.id)).scalar_one()
    stored.expires_at = stored.created_at - timedelta(seconds=1)
    db.session.flush()
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 404
    db.session.refresh(user)
    assert verify_password(user.password_hash, TEST_PASSWORD)


def test_only_the_newest_reset_link_works(app, db, client, make):
    user = make.user()
    _forgot(client, user.email)
    first = link_in_last_email(user.email, RESET_PATH)
    _forgot(client, user.email)
    second = link_in_last_email(user.email, RESET_PATH)
    assert client.get(first).status_code == 404 and client.get(second).status_code == 200


@pytest.mark.parametrize("forged", ["x", "A" * 43, "B" * 3000, "%27%20or%201%3D1--"])
def test_forged_reset_token_is_refused(db, client, make, forged):
    user = make.user()
    _forgot(client, user.email)
    response = client.post(RESET_PATH + forged, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 404
    db.session.refresh(user)
    assert verify_password(user.password_hash, TEST_PASSWORD)


def test_a_link_for_an_unknown_address_can_never_be_used(app, db, client):
    """The row stored for an unknown address (same work, ASVS 6.3.8) matches no user."""
    _forgot(client, "nobody@example.test")
    stored = db.session.execute(select(ActionToken).where(ActionToken.email == "nobody@example.test")).scalar_one()
    assert stored.user_id is None


@pytest.mark.parametrize(
    "password, message",
    [
        ("short pw 1", "at least 12 characters"),
        ("qwerty123456", "leaked passwords"),
        ("{email}", "e-mail address"),
        ("{local}-secret-words", "e-mail address"),
        ("recoverydesk2026!", "name of this service"),
        ("y" * 257, "at most 256 characters"),
    ],
)
def test_reset_with_a_bad_password_says_why_and_keeps_the_link(db, client, make, password, message):
    # ASVS 6.2.1, 6.2.4, 6.2.9, 6.2.11, 6.2.12
    user = make.user(email="yamada.taro@example.test")
    _forgot(client, user.email)
    path = link_in_last_email(user.email, RESET_PATH)
    password = password.format(email=user.email, local="yamada.taro")
    response = client.post(path, data={"password": password, "confirm": password}, headers={"Accept-Language": "en"})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.refresh(user)
    assert verify_password(user.password_hash, TEST_PASSWORD)
    assert client.get(path).status_code == 200


def test_a_password_is_never_altered(db, client, make):
    # ASVS 6.2.5, 6.2.9: spaces, any characters, case kept
    user = make.user()
    _forgot(client, user.email)
    path = link_in_last_email(user.email, RESET_PATH)
    password = "  Ünïcode 合言葉 with Spaces  "
    client.post(path, data={"password": password, "confirm": password})
    db.session.refresh(user)
    assert verify_password(user.password_hash, password)
    assert not verify_password(user.password_hash, password.strip())
    assert not verify_password(user.password_hash, password.lower())


def test_reset_without_csrf_token_changes_nothing(db, client, make):
    user = make.user()
    assert client.post(FORGOT, data={"email": user.email}, csrf=False).status_code == 400
    assert outbox_messages("email") == []
    _forgot(client, user.email)
    path = link_in_last_email(user.email, RESET_PATH)
    assert client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, csrf=False).status_code == 400
    db.session.refresh(user)
    assert verify_password(user.password_hash, TEST_PASSWORD)


@pytest.mark.parametrize("email", ["", "x" * 300 + "@example.test", "not an address"])
def test_forgot_password_with_an_empty_or_over_long_address_says_so(db, client, email):
    response = _forgot(client, email)
    assert response.status_code == 400 and 'class="field-error"' in response.get_data(as_text=True)
    assert outbox_messages("email") == []


def test_forgot_password_is_rate_limited_per_address(app, db, client, make):
    # ASVS 2.4.1, 6.3.1: the same limit applies to known and unknown addresses
    app.config["RECOVERY_RESET_LIMIT_PER_ADDRESS"] = "3 per hour"
    user = make.user()
    assert [_forgot(client, user.email).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [_forgot(client, "nobody@example.test").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert _forgot(client, make.user().email).status_code == 200
    assert len(outbox_messages("email", user.email)) == len(outbox_messages("email", "nobody@example.test")) == 3


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_form_without_an_address_is_refused_and_not_counted_against_any(app, db, client, make, caplog, blank):
    # An empty key would make Flask-Limiter skip the limit with an error in the log each time.
    app.config["RECOVERY_RESET_LIMIT_PER_ADDRESS"] = "1 per hour"
    for _ in range(3):
        response = _forgot(client, blank)
        assert response.status_code == 400 and 'class="field-error"' in response.get_data(as_text=True)
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
    user = make.user()
    assert [_forgot(client, user.email).status_code for _ in range(2)] == [200, 429]


def test_forgot_password_is_rate_limited_per_client_address(app, client):
    app.config["RECOVERY_RESET_LIMIT_PER_CLIENT"] = "2 per hour"
    codes = [_forgot(client, f"p{n}@example.test").status_code for n in range(3)]
    assert codes == [200, 200, 429]


def test_reset_link_uses_the_configured_base_address_not_the_host_header(app, make, now):
    from recovery_app.account import services

    user = make.user()
    with app.test_request_context(FORGOT, base_url="http://evil.example"):
        services.request_password_reset(user.email, "en", now, address=None, browser=None)
    body = outbox_messages("email", user.email)[-1].body
    assert "evil.example" not in body and app.config["RECOVERY_BASE_URL"] + RESET_PATH in body
