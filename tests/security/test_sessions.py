"""Sessions and cookies: fixation, timeouts with the reason on the sign-in page,
a new token at re-authentication, and the production cookie attributes
(ASVS 7.2.4, 7.3.1, 7.3.2, 7.4.1, 3.3.1-3.3.4)."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from recovery_app.auth import twofactor
from recovery_app.auth.sessions import SID_KEY
from recovery_app.config import load_config
from recovery_app.models import UserSession
from recovery_app.models.base import utcnow

IDLE_MESSAGE = "no activity for a while"
LIFETIME_MESSAGE = "sessions end after some hours"
ENDED_MESSAGE = "Your session was ended"


def sign_in_page_after(client, path="/settings/security"):
    response = client.get(path)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_session_cookie_set_before_sign_in_is_not_kept(client, make, auth, db):
    # ASVS 7.2.4: session fixation. Whatever the attacker planted, the signed-in session is new.
    user = make.user()
    with client.session_transaction() as sess:
        sess["planted"] = "by the attacker"
        sess[SID_KEY] = "attacker-chosen-token"
    before = client.get_cookie("session").value
    auth.password(client, user)
    with client.session_transaction() as sess:
        assert "planted" not in sess and SID_KEY not in sess
    auth.sign_in(client, user)
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess[SID_KEY] != "attacker-chosen-token"
    rows = db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).scalars().all()
    assert len(rows) == 1 and rows[0].ended_at is None


def test_re_authentication_gives_a_new_session_token(app, client, make, auth, db):
    # ASVS 7.2.4: after the confirm page, a copy of the old cookie is worthless
    user = make.user()
    auth.fast_sign_in(client, user)
    with client.session_transaction() as sess:
        stolen = dict(sess)
    response = client.post("/settings/confirm?next=/settings/security", data={"code": auth.totp(user)})
    assert response.status_code == 302
    assert client.get("/settings/security").status_code == 200
    with client.session_transaction() as sess:
        assert sess[SID_KEY] != stolen[SID_KEY]
    thief = app.test_client()
    with thief.session_transaction() as sess:
        sess.update(stolen)
    assert thief.get("/settings/security").status_code == 302


@pytest.mark.parametrize(
    ("role", "idle_minutes"), (("seller_owner", 30), ("seller_user", 30), ("reviewer", 15), ("manager", 15))
)
def test_idle_sessions_end_and_the_sign_in_page_says_why(client, make, auth, db, role, idle_minutes):
    # ASVS 7.3.1, NIST AAL2: 30 minutes idle for sellers, 15 for staff
    user = make.user(role)
    row = auth.fast_sign_in(client, user, at=utcnow() - timedelta(minutes=idle_minutes - 1))
    assert client.get("/help").status_code == 200
    row.last_seen_at = utcnow() - timedelta(minutes=idle_minutes, seconds=5)
    db.session.flush()
    page = sign_in_page_after(client)
    assert IDLE_MESSAGE in page
    assert row.ended_at is not None and row.end_reason == "idle"
    assert IDLE_MESSAGE not in client.get("/sign-in").get_data(as_text=True)  # said once


@pytest.mark.parametrize(("role", "hours"), (("seller_owner", 12), ("reviewer", 8), ("manager", 8)))
def test_sessions_end_at_their_absolute_lifetime_and_the_sign_in_page_says_why(client, make, auth, db, role, hours):
    # ASVS 7.3.2, NIST AAL2: 12 hours for sellers, 8 for staff, however active
    user = make.user(role)
    row = auth.fast_sign_in(client, user)
    row.created_at = utcnow() - timedelta(hours=hours) + timedelta(minutes=1)
    db.session.flush()
    assert client.get("/settings/security").status_code == 200
    row.created_at = utcnow() - timedelta(hours=hours, seconds=5)
    row.last_seen_at = utcnow()
    db.session.flush()
    assert LIFETIME_MESSAGE in sign_in_page_after(client)
    assert row.end_reason == "lifetime"


def test_a_session_ended_elsewhere_says_so_on_the_sign_in_page(app, make, auth, db):
    # ASVS 7.4.1 / 7.5.2: ended from "your sessions" on another device
    user = make.user()
    here, elsewhere = app.test_client(), app.test_client()
    auth.fast_sign_in(here, user)
    auth.fast_sign_in(elsewhere, user)
    auth.fresh_code(elsewhere)
    assert elsewhere.post("/account/sessions/end", data={"scope": "others"}).status_code == 302
    assert ENDED_MESSAGE in sign_in_page_after(here)
    assert elsewhere.get("/settings/security").status_code == 200


@pytest.mark.parametrize("key", [str(2**70) + ":0", "0:0", "-3:0", "1:x", "1", "1:2:3", ""])
def test_a_session_naming_no_user_row_is_signed_out_not_an_error(app, client, key):
    # Only a cookie signed with the secret key gets this far; it still names nobody.
    with client.session_transaction() as sess:
        sess["_user_id"] = key
    response = client.get("/settings/security")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def test_staff_sessions_are_shorter_than_sellers(app):
    config = app.config
    assert config["RECOVERY_STAFF_IDLE_MINUTES"] < config["RECOVERY_SELLER_IDLE_MINUTES"] <= 30
    assert config["RECOVERY_STAFF_SESSION_HOURS"] < config["RECOVERY_SELLER_SESSION_HOURS"] <= 12


@pytest.fixture
def production_cookies(app, monkeypatch):
    """The cookie settings production runs with, on the test app (served over https)."""
    monkeypatch.setenv("RECOVERY_SECRET_KEY", "r" * 48)
    monkeypatch.setenv("RECOVERY_VAULT_KEY", "A" * 43 + "=")
    production = load_config({"RECOVERY_ENV": "production"})
    for key in (
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "RECOVERY_TRUSTED_DEVICE_COOKIE",
        "RECOVERY_KNOWN_BROWSER_COOKIE",
        "RECOVERY_COOKIE_SECURE",
    ):
        monkeypatch.setitem(app.config, key, production[key])
    return app


def test_production_cookies_are_host_prefixed_secure_and_httponly(production_cookies, make, auth):
    # ASVS 3.3.1 Secure, 3.3.2 SameSite, 3.3.3 __Host- prefix, 3.3.4 HttpOnly
    client = production_cookies.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    user = make.user()
    response = auth.sign_in(client, user, remember=True)
    cookies = {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}
    assert set(cookies) == {"__Host-session", "__Host-trusted", "__Host-known"}
    for header in cookies.values():
        attributes = [part.strip().lower() for part in header.split(";")]
        assert "secure" in attributes and "httponly" in attributes and "path=/" in attributes
        assert "samesite=lax" in attributes
        assert not any(part.startswith("domain=") for part in attributes)  # required by __Host-
    assert client.get("/settings/security").status_code == 200
    client.post("/sign-out")
    assert auth.password(client, user).headers["Location"] == "/"  # the __Host-trusted cookie is read back


def test_development_cookies_are_not_marked_secure_so_plain_http_works(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] and not app.config["SESSION_COOKIE_SECURE"]
    assert not app.config["SESSION_COOKIE_NAME"].startswith("__Host-")


def test_after_adding_or_removing_a_method_the_other_sessions_can_be_ended(app, client, make, auth, db):
    # ASVS 7.4.3: the change lands on "your sessions" with the offer to end the others
    user = make.user(locale="en")
    elsewhere = app.test_client()
    auth.fast_sign_in(elsewhere, user)
    auth.fast_sign_in(client, user)
    auth.fresh_code(client)
    page = client.get("/settings/security/app").get_data(as_text=True)
    key = re.sub(r"<[^>]+>|\s", "", re.search(r'id="setup-key">(.*?)</p>', page, re.DOTALL).group(1))
    added = client.post("/settings/security/app", data={"code": pyotp.TOTP(key).now()})
    assert added.headers["Location"].endswith("/account/sessions?after=method")
    offer = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Other sessions still signed in: 1." in offer
    old = next(m for m in twofactor.confirmed_methods(user) if not m.is_primary)
    removed = client.post(f"/settings/security/methods/{old.id}/remove")
    assert removed.headers["Location"].endswith("/account/sessions?after=method")
    assert client.post("/account/sessions/end", data={"scope": "others"}).status_code == 302
    assert elsewhere.get("/settings/security").status_code == 302
    assert client.get("/settings/security").status_code == 200
