"""Senders hand one outbox message to the outside world.

* E-mail goes by SMTP when ``RECOVERY_SMTP_HOST`` is set (``SmtpSender``).
* SMS and voice go through Twilio when ``RECOVERY_TWILIO_ACCOUNT_SID`` is set
  (``TwilioSender``, with Twilio's own Python library).
* Otherwise the development sender keeps the message in the outbox table,
  where ``flask outbox list`` and the tests read it.

``RECOVERY_SENDER=module:Class`` replaces all of them with one class (tests use
it for a provider that is down).

A sender raises ``SendError`` for a failure worth trying again (connection
refused or dropped, timeout, a 4xx SMTP reply, an HTTP 5xx or 429) and
``PermanentSendError`` when trying again cannot help (the recipient is
refused, the number does not exist). Credentials are never put in a log line
or an error message.
"""

from __future__ import annotations

import importlib
import logging
import secrets
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr
from typing import Protocol

from flask import current_app

from ..models import OutboxMessage


class SendError(RuntimeError):
    """A temporary failure: the message will be tried again later."""


class PermanentSendError(SendError):
    """Trying again cannot help: the message is marked failed at once."""


class Sender(Protocol):
    def send(self, message: OutboxMessage) -> str | None:
        """Send, and return the provider's id for the message if it has one."""


class OutboxOnlySender:
    """Delivers nowhere: the outbox row itself is the delivered message, so it
    keeps its text (``flask outbox list`` shows codes in development)."""

    keeps_text = True

    def send(self, message: OutboxMessage) -> str | None:
        return None


# --- e-mail --------------------------------------------------------------------------


class SmtpSender:
    """One SMTP connection per message, with a timeout on connecting and on
    every command. Plain text only: the notices are a few lines and a link,
    which an HTML part would repeat without adding anything."""

    def __init__(self, config):
        self.host = config["RECOVERY_SMTP_HOST"]
        self.port = config["RECOVERY_SMTP_PORT"]
        self.security = config["RECOVERY_SMTP_SECURITY"]
        self.username = config.get("RECOVERY_SMTP_USERNAME")
        self.password = config.get("RECOVERY_SMTP_PASSWORD")
        self.timeout = config["RECOVERY_SMTP_TIMEOUT_SECONDS"]
        self.ca_file = config.get("RECOVERY_SMTP_CA_FILE")
        self.mail_from = config["RECOVERY_MAIL_FROM"]
        self.from_name = config["RECOVERY_PRODUCT_NAME"]

    def compose(self, message: OutboxMessage, now: datetime) -> EmailMessage:
        # The SMTP policy writes CRLF line ends and encodes non-ASCII headers
        # as RFC 2047 encoded words (=?utf-8?b?...?=); the body is UTF-8 in
        # base64, which every common client shows right.
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["From"] = formataddr((self.from_name, self.mail_from))
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(now)
        # Unique without naming this host (make_msgid would), short enough not to be folded.
        domain = self.mail_from.rpartition("@")[2]
        mail["Message-ID"] = f"<{now:%Y%m%d%H%M%S}.outbox{message.id}.{secrets.token_hex(6)}@{domain}>"
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body, charset="utf-8")
        return mail

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, message: OutboxMessage) -> str | None:
        from ..models.base import utcnow

        mail = self.compose(message, utcnow())
        try:
            if self.security == "ssl":
                connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._tls())
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with connection:
                if self.security == "starttls":
                    connection.starttls(context=self._tls())
                if self.username:
                    connection.login(self.username, self.password or "")
                connection.send_message(mail, from_addr=self.mail_from, to_addrs=[message.to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            error = PermanentSendError if code >= 500 else SendError
            raise error(f"recipient refused: {code} {_text(reply)}") from None
        except smtplib.SMTPAuthenticationError as exc:
            # A setting to fix, not a bad message: keep it for the retries.
            raise SendError(f"SMTP login refused: {exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            error = PermanentSendError if exc.smtp_code >= 500 else SendError
            raise error(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out, TLS
            raise SendError(f"SMTP {type(exc).__name__}: {exc}"[:300]) from None
        return str(mail["Message-ID"])


def _text(reply) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply))[:200]


# --- SMS and voice -------------------------------------------------------------------

VOICE_LANGUAGES = {"ja": "ja-JP", "en": "en-US"}
# A 4xx from Twilio means this number will not take this message, ever (not a
# mobile number, unsubscribed, unknown country), except 401/403 (our
# credentials: a setting to fix) and 429 (too many requests: slow down).
_PERMANENT_TWILIO_STATUSES = frozenset(range(400, 500)) - {401, 403, 408, 429}


class TwilioSender:
    """Text messages through Twilio Messaging; calls through Twilio Voice, which
    reads the code digit by digit, twice, in the user's language."""

    def __init__(self, config):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        quiet = logging.getLogger("recovery_app.notify.twilio")
        quiet.setLevel(logging.WARNING)  # the SDK logs requests at INFO: keep numbers and bodies out
        http = TwilioHttpClient(timeout=config["RECOVERY_TWILIO_TIMEOUT_SECONDS"], logger=quiet)
        self.client = Client(
            config["RECOVERY_TWILIO_ACCOUNT_SID"], config["RECOVERY_TWILIO_AUTH_TOKEN"], http_client=http
        )
        base_url = config.get("RECOVERY_TWILIO_API_BASE_URL")
        if base_url:
            # Each API domain of the SDK keeps its base URL; the tests' local
            # stand-in replaces it for api.twilio.com (Messages and Calls).
            self.client.api.base_url = base_url.rstrip("/")
        self.sender = config.get("RECOVERY_TWILIO_FROM")
        self.service = config.get("RECOVERY_TWILIO_MESSAGING_SERVICE_SID")
        self.callback_base = config["RECOVERY_BASE_URL"].rstrip("/")

    def _callback(self) -> str:
        return f"{self.callback_base}/notify/twilio/status"

    def send(self, message: OutboxMessage) -> str | None:
        from requests import RequestException
        from twilio.base.exceptions import TwilioRestException

        try:
            if message.channel == "sms":
                options = {"messaging_service_sid": self.service} if self.service else {"from_": self.sender}
                created = self.client.messages.create(
                    to=message.to, body=message.body.strip(), status_callback=self._callback(), **options
                )
            elif message.channel == "voice":
                created = self.client.calls.create(
                    to=message.to,
                    from_=self.sender,
                    twiml=self.twiml(message),
                    status_callback=self._callback(),
                    status_callback_event=["completed"],
                )
            else:
                raise PermanentSendError(f"Twilio does not send {message.channel}")
        except TwilioRestException as exc:
            error = PermanentSendError if exc.status in _PERMANENT_TWILIO_STATUSES else SendError
            raise error(f"Twilio {exc.status} (error {exc.code})") from None
        except RequestException as exc:  # refused, dropped, timed out
            raise SendError(f"Twilio unreachable: {type(exc).__name__}") from None
        return created.sid

    @staticmethod
    def twiml(message: OutboxMessage) -> str:
        """The call's script: the rendered text (which already says the code
        twice, digits apart), with a pause before it and between sentences."""
        from twilio.twiml.voice_response import VoiceResponse

        language = VOICE_LANGUAGES.get(message.locale, "en-US")
        response = VoiceResponse()
        response.pause(length=1)
        for sentence in _sentences(message.body):
            response.say(sentence, language=language)
            response.pause(length=1)
        return str(response)


def _sentences(text: str) -> list[str]:
    parts, current = [], ""
    for char in text.strip():
        current += char
        if char in "。.":
            parts.append(current.strip())
            current = ""
    if current.strip():
        parts.append(current.strip())
    return parts


# --- choosing ------------------------------------------------------------------------


def get_sender(channel: str) -> Sender:
    config = current_app.config
    spec = config.get("RECOVERY_SENDER")
    if spec:
        module_name, _, class_name = spec.partition(":")
        return getattr(importlib.import_module(module_name), class_name)()
    if channel == "email" and config.get("RECOVERY_SMTP_HOST"):
        return SmtpSender(config)
    if channel in ("sms", "voice") and config.get("RECOVERY_TWILIO_ACCOUNT_SID"):
        return TwilioSender(config)
    return OutboxOnlySender()
