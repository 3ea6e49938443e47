"""Fixtures for sending: a real SMTP server (plain, or STARTTLS with a
certificate made for the test) and the local Twilio stand-in, with the app's
settings pointed at them."""

from __future__ import annotations

import pytest

from .servers import MailServer, TwilioStandIn, make_certificate

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-auth-token-" + "z" * 16


def mail_settings(server: MailServer, security: str = "none", ca_file=None) -> dict:
    return {
        "RECOVERY_SMTP_HOST": "127.0.0.1",
        "RECOVERY_SMTP_PORT": server.port,
        "RECOVERY_SMTP_SECURITY": security,
        "RECOVERY_SMTP_CA_FILE": str(ca_file) if ca_file else None,
        "RECOVERY_SMTP_TIMEOUT_SECONDS": 5.0,
        "RECOVERY_MAIL_FROM": "no-reply@recovery-desk.example",
    }


def twilio_settings(standin: TwilioStandIn) -> dict:
    return {
        "RECOVERY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "RECOVERY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "RECOVERY_TWILIO_FROM": "+15005550006",
        "RECOVERY_TWILIO_API_BASE_URL": standin.base_url,
        "RECOVERY_TWILIO_TIMEOUT_SECONDS": 5.0,
        "RECOVERY_BASE_URL": "https://desk.example",
    }


@pytest.fixture
def mail_server(app):
    with MailServer() as server:
        app.config.update(mail_settings(server))
        yield server


@pytest.fixture
def tls_mail_server(app, tmp_path):
    cert, key = make_certificate(tmp_path)
    with MailServer(tls_files=(cert, key)) as server:
        app.config.update(mail_settings(server, "starttls", cert))
        yield server


@pytest.fixture
def twilio(app):
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
        app.config.update(twilio_settings(standin))
        yield standin
