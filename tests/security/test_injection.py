"""SQL-ish and script-ish strings in every text field of the sign-in, account
and settings forms: refused or stored as text, and always shown escaped
(ASVS 1.2.1 output encoding, 1.2.4 parameterised queries, 2.2.1 input validation)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from recovery_app.models import User
from tests.account.conftest import link_in_last_email
from tests.security.conftest import changed_tables, snapshot

PAYLOADS = ("' OR 1=1 --", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
# Control, bidirectional and zero-width characters: refused in every text field, never a 500 (PostgreSQL
# refuses NUL outright).
UNSAFE = ("nul\x00byte@example.test", "right\u202eto-left name 42", "zero\u200bwidth\u200bspace")
RAW_MARKUP = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "' OR 1=1 --")
# Tables a refused form may still touch: counters of failures, the event log, messages.
BOOKKEEPING = {"security_events", "outbox", "sent_codes", "audit_events", "audit_head", "users"}


def assert_escaped(response, where):
    assert response.status_code < 500, f"{where}: {response.status_code}"
    page = response.get_data(as_text=True)
    for raw in RAW_MARKUP:
        assert raw not in page, f"{where} echoed {raw!r} unescaped"


def user_count(db):
    return db.session.execute(select(func.count(User.id))).scalar_one()


@pytest.fixture
def people(make, app, client, db):
    owner = make.user("seller_owner", locale="en", email="owner.person@example.test")
    enrolling = make.user(enrolled=False, locale="en")
    return owner, enrolling


def forms_by_state(owner, enrolling, reset_path, invitation_path):
    """(state, path, text fields) for every form that takes text."""
    return [
        ("visitor", "/sign-in", ("email", "password", "next")),
        ("visitor", "/account/password/forgot", ("email",)),
        ("visitor", reset_path, ("password", "confirm")),
        ("visitor", invitation_path, ("display_name", "password", "confirm")),
        ("password_step", "/sign-in/code", ("code",)),
        ("password_step", "/sign-in/other-ways", ("method_id", "channel")),
        ("enrolling", "/sign-in/setup/phone", ("number", "channel")),
        ("enrolling", "/sign-in/setup/app", ("code",)),
        ("signed_in", "/settings/confirm", ("code",)),
        ("signed_in", "/settings/security/phone", ("number", "channel")),
        ("signed_in", "/settings/security/app", ("code",)),
        ("signed_in", "/account/password", ("current_password", "password", "confirm")),
        ("signed_in", "/account/email", ("email",)),
        ("signed_in", "/account/users/invite", ("email", "locale")),
        ("signed_in", "/account/sessions/end", ("session_id", "scope")),
    ]


@pytest.mark.parametrize("payload", PAYLOADS + UNSAFE)
def test_every_text_field_refuses_or_escapes_injection_strings(app, db, make, auth, people, payload):
    owner, enrolling = people
    visitor = app.test_client()
    resetting = make.user(locale="en")  # the reset ends this user's sessions when the payload is a fine password
    visitor.post("/account/password/forgot", data={"email": resetting.email})
    reset_path = link_in_last_email(resetting.email, "/account/password/reset/")
    signed_in = app.test_client()
    auth.fast_sign_in(signed_in, owner)
    auth.fresh_code(signed_in)
    signed_in.post("/account/users/invite", data={"email": "new.person@example.test", "locale": "en"})
    invitation_path = link_in_last_email("new.person@example.test", "/account/invitation/")
    users_before = user_count(db)
    for state, path, fields in forms_by_state(owner, enrolling, reset_path, invitation_path):
        client = app.test_client()
        if state == "password_step":
            auth.fast_password_step(client, owner)
        elif state == "enrolling":
            auth.fast_password_step(client, enrolling)
        elif state == "signed_in":
            client = signed_in
            auth.fresh_code(client)
        client.get(path)  # start whatever the page starts (a challenge, a set-up)
        before = snapshot()
        response = client.post(path, data={name: payload for name in fields})
        assert_escaped(response, path)
        if response.status_code == 302:
            assert_escaped(client.get(response.headers["Location"]), f"{path} -> {response.headers['Location']}")
        changed = set(changed_tables(before, snapshot())) - BOOKKEEPING
        if len(payload) >= 12 and path in (reset_path, invitation_path):
            # any characters make a password (ASVS 6.2.4): these two may be accepted as one
            changed -= {"action_tokens", "user_sessions", "accounts"}
        assert changed == set(), f"{path} with {payload!r} changed {changed}"
    assert user_count(db) in (users_before, users_before + 1)
    assert owner.email == "owner.person@example.test"


@pytest.mark.parametrize("payload", PAYLOADS + UNSAFE)
def test_sign_in_with_injection_strings_signs_nobody_in(client, make, payload):
    make.user(email="victim.person@example.test")
    for data in ({"email": payload, "password": payload}, {"email": "victim.person@example.test", "password": payload}):
        response = client.post("/sign-in", data=data)
        assert_escaped(response, "/sign-in")
        assert client.get("/sign-in/code").status_code == 302  # not even the password step


@pytest.mark.parametrize("payload", PAYLOADS[1:])
def test_a_name_with_markup_is_stored_as_text_and_shown_escaped_to_the_owner(app, db, auth, make, payload):
    # stored XSS: the one free-text field a visitor sets (the name given at invitation acceptance)
    owner = make.user("seller_owner", locale="en")
    owner_browser = app.test_client()
    auth.fast_sign_in(owner_browser, owner)
    owner_browser.post("/account/users/invite", data={"email": "new.person@example.test", "locale": "en"})
    invited = app.test_client()
    path = link_in_last_email("new.person@example.test", "/account/invitation/")
    password = "quiet lantern orchard 9107"
    response = invited.post(path, data={"display_name": payload, "password": password, "confirm": password})
    assert response.status_code == 302
    person = db.session.execute(select(User).where(User.email == "new.person@example.test")).scalar_one()
    assert person.display_name == payload  # kept as typed: text, not markup
    page = owner_browser.get("/account/users")
    assert_escaped(page, "/account/users")
    assert "&lt;" in page.get_data(as_text=True)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_staff_search_with_injection_strings_is_escaped(app, make, auth, payload):
    manager = make.user("manager", locale="en")
    client = app.test_client()
    auth.fast_sign_in(client, manager)
    response = client.get("/staff/users", query_string={"q": payload})
    assert_escaped(response, "/staff/users")


@pytest.mark.parametrize("payload", UNSAFE)
def test_a_disguised_name_is_refused_with_a_message(app, db, auth, make, payload):
    owner = make.user("seller_owner", locale="en")
    owner_browser = app.test_client()
    auth.fast_sign_in(owner_browser, owner)
    owner_browser.post("/account/users/invite", data={"email": "new.person@example.test", "locale": "en"})
    path = link_in_last_email("new.person@example.test", "/account/invitation/")
    before = snapshot()
    password = "quiet lantern orchard 9107"
    response = app.test_client().post(path, data={"display_name": payload, "password": password, "confirm": password})
    assert response.status_code == 400
    assert "invisible or control characters" in response.get_data(as_text=True)
    assert set(changed_tables(before, snapshot())) <= BOOKKEEPING


@pytest.mark.parametrize("payload", UNSAFE)
def test_reviewer_notes_and_messages_refuse_unsafe_characters(app, db, auth, make, payload):
    from recovery_app.models import CaseNote
    from recovery_app.models.base import utcnow
    from recovery_app.review import claims

    reviewer = make.user("reviewer", locale="en")
    case = make.case()
    claims.claim(case.reference, reviewer, now=utcnow())
    client = app.test_client()
    auth.fast_sign_in(client, reviewer)
    for path, data in (
        (f"/review/case/{case.reference}/notes", {"body": payload}),
        (f"/review/case/{case.reference}/request-documents", {"message": payload}),
        (f"/review/case/{case.reference}/reject", {"reason": "unreadable", "message": payload, "confirm": "y"}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "invisible or control characters" in response.get_data(as_text=True), path
    db.session.refresh(case)
    assert case.status == "in_review"
    assert db.session.execute(select(func.count(CaseNote.id))).scalar_one() == 0
