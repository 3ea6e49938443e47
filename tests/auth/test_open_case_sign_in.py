"""A seller with an open recovery case signs in: the case comes first, and no
code goes to the (probably lost) phone unless the seller asks for one."""

from __future__ import annotations

from tests.helpers import last_code, outbox_messages

PHONE = "+819012345678"


def _seller_with_case(make, add_phone, kind="sms"):
    user = make.user(enrolled=False)
    add_phone(user, PHONE, kind=kind)
    case = make.case(user)
    return user, case


def test_password_step_shows_the_open_case_and_sends_nothing(client, make, auth, add_phone):
    user, case = _seller_with_case(make, add_phone)
    response = auth.password(client, user)
    assert response.status_code == 302 and response.headers["Location"].endswith("/recovery/case")
    assert outbox_messages("sms") == [] and outbox_messages("voice") == []
    page = client.get("/recovery/case").get_data(as_text=True)
    assert case.reference in page and 'id="case-due"' in page
    assert 'id="enter-code-instead"' in page and 'href="/sign-in/code"' in page


def test_challenge_page_offers_the_code_instead_of_sending_it(client, make, auth, add_phone):
    user, _case = _seller_with_case(make, add_phone, kind="voice")
    auth.password(client, user)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert 'id="code-not-sent"' in page and "5678" in page
    assert outbox_messages("voice") == [] and outbox_messages("sms") == []


def test_challenge_opened_directly_sends_nothing_either(client, make, auth, add_phone):
    user, _case = _seller_with_case(make, add_phone)
    auth.fast_password_step(client, user)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert 'id="code-not-sent"' in page
    assert outbox_messages("sms") == []


def test_a_code_goes_once_the_seller_asks_and_signs_them_in(client, make, auth, add_phone, db):
    user, _case = _seller_with_case(make, add_phone)
    auth.password(client, user)
    from recovery_app.auth import twofactor

    method_id = twofactor.primary_method(user).id
    asked = client.post("/sign-in/other-ways", data={"method_id": str(method_id), "channel": "sms"})
    assert asked.headers["Location"].endswith("/sign-in/code")
    [sms] = outbox_messages("sms", PHONE)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert 'id="code-not-sent"' not in page and "We sent a text message" in page
    assert client.post("/sign-in/code", data={"code": last_code(PHONE)}).status_code == 302


def test_without_an_open_case_the_primary_phone_still_gets_its_code(client, make, auth, add_phone, db):
    user = make.user(enrolled=False)
    add_phone(user, PHONE)
    closed = make.case(user)
    closed.status = "withdrawn"
    db.session.flush()
    response = auth.password(client, user)
    assert response.headers["Location"].endswith("/sign-in/code")
    assert len(outbox_messages("sms", PHONE)) == 1


def test_code_page_opened_directly_starts_the_challenge_and_sends_the_code(client, make, auth, add_phone):
    # No challenge in this browser yet (the password step came from elsewhere): the page
    # starts one, as a writer, and the phone gets its code once; opening it again sends nothing more.
    user = make.user(enrolled=False)
    add_phone(user, PHONE)
    auth.fast_password_step(client, user)
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert "We sent a text message" in page and 'id="code-not-sent"' not in page
    assert len(outbox_messages("sms", PHONE)) == 1
    client.get("/sign-in/code")
    assert len(outbox_messages("sms", PHONE)) == 1
    assert client.post("/sign-in/code", data={"code": last_code(PHONE)}).status_code == 302
