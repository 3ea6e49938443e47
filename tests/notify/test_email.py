"""E-mail over SMTP to a real server (aiosmtpd) on this machine: what arrives,
how Japanese reads, STARTTLS, and which failures are tried again."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import select

from recovery_app import notify
from recovery_app.models import OutboxMessage
from recovery_app.models.base import utcnow
from tests.helpers import last_code, outbox_messages, queued_notice
from tests.signin import SignIn

from .servers import DroppingServer, free_port

FORGOT = "/account/password/forgot"
SIX_DIGITS = re.compile(r"(?<!\d)\d(?:[ ,、-]?\d){5}(?!\d)")


def _reset_mail(client, make, db, locale="ja"):
    user = make.user(locale=locale)
    db.session.commit()
    client.post(FORGOT, data={"email": user.email}, headers={"Accept-Language": locale})
    [row] = outbox_messages("email", user.email)
    return user, row


def test_a_japanese_notice_arrives_with_proper_headers_and_readable_text(app, db, client, make, now, mail_server):
    user, row = _reset_mail(client, make, db)
    assert notify.deliver_due(utcnow()) == {"sent": 1, "retried": 0, "failed": 0}

    [mail] = mail_server.messages
    [envelope] = mail_server.envelopes
    assert envelope.mail_from == "no-reply@recovery-desk.example" and envelope.rcpt_tos == [user.email]
    assert mail["From"] == "Recovery Desk <no-reply@recovery-desk.example>"
    assert mail["To"] == user.email
    assert parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert re.fullmatch(r"<\d{14}\.outbox\d+\.[0-9a-f]{12}@recovery-desk\.example>", mail["Message-ID"])
    # Japanese subjects travel as RFC 2047 encoded words and decode back exactly.
    raw_subject = re.search(rb"^Subject: (.+(?:\r\n[ \t].+)*)", envelope.original_content, re.MULTILINE).group(1)
    assert b"=?utf-8?" in raw_subject and not re.search(rb"[\x80-\xff]", envelope.original_content)
    assert mail["Subject"] == row.subject and "パスワード" in mail["Subject"]
    # One plain-text part in UTF-8: the notice has nothing an HTML part would add.
    assert not mail.is_multipart() and mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content()
    assert body.replace("\r\n", "\n") == row.body
    assert "新しいパスワード" in body
    link = re.search(r"https?://\S+/account/password/reset/\S+", body).group(0)
    assert app.test_client().get(link.split("://", 1)[1].split("/", 1)[1].join(["/", ""])).status_code == 200
    db.session.refresh(row)
    assert row.status == "sent" and row.provider_id == mail["Message-ID"] and row.body == body.replace("\r\n", "\n")


def test_starttls_with_a_certificate_the_server_proves(app, db, client, make, now, tls_mail_server):
    _, row = _reset_mail(client, make, db, locale="en")
    assert notify.deliver_due(utcnow())["sent"] == 1
    assert tls_mail_server.over_tls == [True]
    assert tls_mail_server.messages[0]["Subject"] == row.subject


def test_starttls_refuses_a_server_whose_certificate_is_not_trusted(app, db, client, make, now, tls_mail_server):
    app.config["RECOVERY_SMTP_CA_FILE"] = None  # the system's authorities do not know the test's certificate
    _, row = _reset_mail(client, make, db, locale="en")
    assert notify.deliver_due(utcnow()) == {"sent": 0, "retried": 1, "failed": 0}
    assert tls_mail_server.messages == []
    db.session.refresh(row)
    assert row.status == "pending" and "SSLCertVerificationError" in row.last_error


def test_no_code_is_ever_in_an_email(app, db, make, now, mail_server, add_phone):
    # ASVS 6.6.1: codes go by SMS or voice only; the notices around a sign-in say so
    user = make.user(locale="ja", enrolled=False)
    add_phone(user)
    db.session.commit()
    client = app.test_client()
    SignIn(app).password(client, user)
    code = last_code("+819012345678")
    # "Don't ask again on this device": the notice of a new trusted device goes by e-mail.
    client.post("/sign-in/code", data={"code": code, "remember_device": "y"})
    notify.deliver_due(utcnow())
    assert mail_server.messages, "the new-device notice should have gone by e-mail"
    for mail in mail_server.messages:
        text = mail.get_content()
        assert code not in text.replace(" ", "") and not SIX_DIGITS.search(text)
        assert "コードが含まれることはありません" in text


def test_a_refused_recipient_fails_at_once(app, db, now, mail_server):
    row = queued_notice("refused@example.test", now, name="R")
    assert notify.deliver_due(now) == {"sent": 0, "retried": 0, "failed": 1}
    db.session.refresh(row)
    assert row.status == "failed" and row.tries == 1 and "550" in row.last_error


def test_a_dropped_or_refused_connection_is_tried_again_later(app, db, now):
    row = queued_notice("someone@example.test", now, name="S")
    with DroppingServer() as dropping:
        app.config.update(
            RECOVERY_SMTP_HOST="127.0.0.1",
            RECOVERY_SMTP_PORT=dropping.port,
            RECOVERY_SMTP_SECURITY="none",
            RECOVERY_SMTP_TIMEOUT_SECONDS=2.0,
        )
        assert notify.deliver_due(now) == {"sent": 0, "retried": 1, "failed": 0}
    db.session.refresh(row)
    assert row.status == "pending" and "SMTPServerDisconnected" in row.last_error
    app.config["RECOVERY_SMTP_PORT"] = free_port()  # nobody listens there
    assert notify.deliver_due(row.next_try_at)["retried"] == 1
    db.session.refresh(row)
    assert row.tries == 2 and "ConnectionRefusedError" in row.last_error
    assert db.session.get(OutboxMessage, row.id).status == "pending"


def test_a_notice_is_queued_without_its_text_and_written_by_its_sender(app, db, client, make, mail_server):
    """The request that tells someone does not compose the e-mail: the row keeps
    the template and its plain context, and the sender writes the text."""
    user = make.user(locale="ja")
    db.session.commit()
    client.post(FORGOT, data={"email": user.email}, headers={"Accept-Language": "ja"})
    row = db.session.execute(select(OutboxMessage).where(OutboxMessage.to == user.email)).scalar_one()
    assert row.body == "" and row.subject == "" and "link" in row.payload["context"]
    assert notify.deliver_due(utcnow())["sent"] == 1
    db.session.refresh(row)
    [mail] = mail_server.messages
    assert row.subject and mail["Subject"] == row.subject and row.payload["context"]["link"] in row.body


def test_an_e_mail_context_must_be_plain_values(app, make, now):
    user = make.user()
    with pytest.raises(ValueError, match="plain values"):
        notify.queue_email(user.email, "auth/email/locked", "ja", now, user=user)


def test_a_subject_written_from_long_names_is_sent_and_kept_within_the_row(app, db, now, mail_server):
    # An address of 230 characters joining an account named with 190: the subject is over 400.
    new_user, account = "x" * 230 + "@example.test", "Shop " * 38
    notify.queue_email(
        "owner@example.test", "account/email/invitation_accepted", "en", now, new_user=new_user, account_name=account
    )
    db.session.commit()
    assert notify.deliver_due(now) == {"sent": 1, "retried": 0, "failed": 0}
    row = db.session.execute(select(OutboxMessage)).scalar_one()
    [mail] = mail_server.messages
    assert row.status == "sent" and len(row.subject) == 300 and row.subject.endswith("…")
    assert " ".join(mail["Subject"].split()) == " ".join(row.subject.split())
