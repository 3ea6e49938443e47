"""Twilio's delivery reports: taken only with Twilio's signature, recorded on
the outbox row, and shown to the seller waiting for a code."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from recovery_app import notify
from recovery_app.models import OutboxMessage
from recovery_app.models.base import utcnow
from tests.helpers import outbox_messages, queued_code
from tests.signin import SignIn

from .conftest import AUTH_TOKEN

PHONE = "+819012345678"
CALLBACK = "/notify/twilio/status"
EN = {"Accept-Language": "en"}


def _report(client, params: dict, *, token: str = AUTH_TOKEN):
    signature = RequestValidator(token).compute_signature("https://desk.example" + CALLBACK, params)
    return client.post(CALLBACK, data=params, headers={"X-Twilio-Signature": signature}, csrf=False)


def _text_sent(app, db, make, add_phone):
    user = make.user(locale="en", enrolled=False)
    add_phone(user, PHONE)
    db.session.commit()
    client = app.test_client()
    SignIn(app).password(client, user)
    notify.deliver_due(utcnow())
    [row] = outbox_messages("sms", PHONE)
    return client, row


def test_an_undelivered_text_is_recorded_and_the_seller_is_offered_a_call(app, db, make, add_phone, twilio):
    client, row = _text_sent(app, db, make, add_phone)
    reporter = app.test_client()
    params = {
        "MessageSid": row.provider_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": "AC" + "0" * 31 + "1",
    }
    assert _report(reporter, params).status_code == 204
    db.session.refresh(row)
    assert row.delivery_status == "undelivered" and row.delivery_error == "30003"

    page = client.get("/sign-in/code", headers=EN).get_data(as_text=True)
    assert "The last text message to" in page and "could not be delivered" in page and "5678" in page
    backups = client.get("/sign-in/other-ways", headers=EN).get_data(as_text=True)
    assert "could not be delivered" in backups and 'value="voice"' in backups
    ja = client.get("/sign-in/code", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "前回のSMSはお届けできませんでした" in ja


def test_a_delivered_text_is_not_undone_by_a_late_report(app, db, make, add_phone, twilio):
    client, row = _text_sent(app, db, make, add_phone)
    reporter = app.test_client()
    _report(reporter, {"MessageSid": row.provider_id, "MessageStatus": "delivered"})
    _report(reporter, {"MessageSid": row.provider_id, "MessageStatus": "sent"})
    db.session.refresh(row)
    assert row.delivery_status == "delivered"
    assert "could not be delivered" not in client.get("/sign-in/code", headers=EN).get_data(as_text=True)


def test_a_report_without_twilios_signature_changes_nothing(app, db, make, add_phone, twilio):
    _, row = _text_sent(app, db, make, add_phone)
    reporter = app.test_client()
    params = {"MessageSid": row.provider_id, "MessageStatus": "undelivered"}
    assert _report(reporter, params, token="someone-elses-token").status_code == 403
    assert reporter.post(CALLBACK, data=params, csrf=False).status_code == 403
    db.session.refresh(row)
    assert row.delivery_status is None


def test_without_twilio_the_report_route_does_not_exist(app, db, now):
    row = queued_code(PHONE, "123456", now)
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered"}
    assert _report(app.test_client(), params).status_code == 404
    assert db.session.get(OutboxMessage, row.id).delivery_status is None
