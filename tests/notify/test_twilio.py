"""SMS and voice through Twilio's own Python library, pointed at the local
stand-in of Twilio's REST API (tests/notify/servers.py): what is sent, what
is kept, and how outages, timeouts and bad numbers are handled."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import timedelta

from recovery_app import notify
from recovery_app.models.base import utcnow
from tests.helpers import last_code, outbox_messages, queued_code
from tests.signin import SignIn

from .conftest import AUTH_TOKEN

PHONE = "+819012345678"


def _signed_in_to_code_page(app, db, make, add_phone, *, locale="ja", kind="sms"):
    user = make.user(locale=locale, enrolled=False)
    add_phone(user, PHONE, kind=kind)
    db.session.commit()
    client = app.test_client()
    SignIn(app).password(client, user)
    return user, client


def test_a_text_goes_through_twilio_and_its_code_is_masked_once_sent(app, db, make, add_phone, twilio):
    _, client = _signed_in_to_code_page(app, db, make, add_phone)
    code = last_code(PHONE)
    assert notify.deliver_due(utcnow()) == {"sent": 1, "retried": 0, "failed": 0}

    [request] = twilio.requests
    assert request["resource"] == "Messages.json" and request["To"] == PHONE and request["From"] == "+15005550006"
    assert code in request["Body"] and "確認コード" in request["Body"]
    assert request["StatusCallback"] == "https://desk.example/notify/twilio/status"
    [row] = outbox_messages("sms", PHONE)
    assert row.status == "sent" and row.provider_id == request["sid"]
    assert code not in row.body and "••••••" in row.body  # the code left; no copy stays here
    # The seller types the code that arrived.
    assert client.post("/sign-in/code", data={"code": code}).status_code == 302


def test_a_call_reads_the_code_digit_by_digit_twice_in_japanese(app, db, now, twilio):
    notify.queue_code("voice", PHONE, "305172", "ja", now)
    db.session.flush()
    assert notify.deliver_due(now)["sent"] == 1
    [request] = twilio.requests
    assert request["resource"] == "Calls.json" and request["To"] == PHONE
    twiml = ET.fromstring(request["Twiml"])
    says = twiml.findall("Say")
    assert says and all(say.get("language") == "ja-JP" for say in says)
    spoken = "".join(say.text for say in says)
    assert spoken.count("3、0、5、1、7、2") == 2 and "305172" not in spoken
    assert twiml.findall("Pause")
    [row] = outbox_messages("voice", PHONE)
    assert "3、0、5" not in row.body and row.body.count("••••••") == 2


def test_an_english_call_is_read_in_english(app, db, now, twilio):
    notify.queue_code("voice", PHONE, "305172", "en", now)
    db.session.flush()
    notify.deliver_due(now)
    says = ET.fromstring(twilio.requests[0]["Twiml"]).findall("Say")
    assert {say.get("language") for say in says} == {"en-US"}
    assert "".join(say.text for say in says).count("3, 0, 5, 1, 7, 2") == 2


def test_an_outage_is_retried_with_backoff_and_the_seller_is_told_to_use_another_way(app, db, make, add_phone, twilio):
    twilio.failure = (503, {"code": 20503, "message": "Service unavailable", "status": 503})
    _, client = _signed_in_to_code_page(app, db, make, add_phone, locale="en")
    start = utcnow()
    assert notify.deliver_due(start) == {"sent": 0, "retried": 1, "failed": 0}
    [row] = outbox_messages("sms", PHONE)
    assert row.status == "pending" and row.last_error == "Twilio 503 (error 20503)"
    assert row.next_try_at == start + timedelta(minutes=1)
    page = client.get("/sign-in/code", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "We are having trouble sending codes right now" in page.get_data(as_text=True)

    moment = start
    while row.status != "failed":  # 1, 2, 4… minutes apart; a code is not retried past its 10 minutes
        moment = row.next_try_at
        notify.deliver_due(moment)
        db.session.refresh(row)
    assert row.tries < notify.services.MAX_TRIES and "expired" in row.last_error
    assert "••••••" in row.body  # the code that never left is not kept either
    page = client.get("/sign-in/code", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "authenticator app or a recovery code" in page.get_data(as_text=True)
    ja = client.get("/sign-in/code", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "確認コードの送信に問題が発生しています" in ja


def test_a_number_twilio_refuses_fails_at_once(app, db, now, twilio):
    twilio.failure = (400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
    row = queued_code(PHONE, "123456", now)
    assert notify.deliver_due(now) == {"sent": 0, "retried": 0, "failed": 1}
    db.session.refresh(row)
    assert row.status == "failed" and row.tries == 1 and "21211" in row.last_error


def test_a_timeout_is_temporary(app, db, now, twilio):
    app.config["RECOVERY_TWILIO_TIMEOUT_SECONDS"] = 0.3
    twilio.delay = 1.0
    row = queued_code(PHONE, "123456", now)
    assert notify.deliver_due(now) == {"sent": 0, "retried": 1, "failed": 0}
    db.session.refresh(row)
    assert row.status == "pending" and "Timeout" in row.last_error


def test_credentials_are_never_logged_or_kept(app, db, now, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    notify.queue_code("sms", PHONE, "123456", "en", now)
    db.session.flush()
    notify.deliver_due(now)
    twilio.failure = (401, {"code": 20003, "message": "Authenticate", "status": 401})
    failed = queued_code(PHONE, "654321", now)
    notify.deliver_due(now)
    db.session.refresh(failed)
    assert failed.status == "pending" and failed.last_error == "Twilio 401 (error 20003)"  # a setting to fix
    for text in (caplog.text, failed.last_error):
        assert AUTH_TOKEN not in text and "654321" not in text and "123456" not in text


def test_without_settings_nothing_leaves_and_codes_stay_readable(app, db, now):
    # The development default: no provider, every message readable with `flask outbox list`.
    row = queued_code(PHONE, "123456", now, locale="ja")
    assert notify.deliver_due(now) == {"sent": 1, "retried": 0, "failed": 0}
    db.session.refresh(row)
    assert row.status == "sent" and "123456" in row.body and row.provider_id is None
