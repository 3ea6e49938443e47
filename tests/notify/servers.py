"""Real servers on this machine for the sending tests and bench/delivery.py.

* ``MailServer``: aiosmtpd, a real SMTP server, plain or with STARTTLS using a
  certificate made here (``make_certificate``). It keeps what arrives, and
  refuses any recipient whose address starts with ``refused``.
* ``TwilioStandIn``: Twilio cannot be reached from here, so this local HTTP
  server speaks the part of Twilio's documented REST API the product uses
  (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` and ``Calls.json``,
  form-encoded, HTTP basic auth with the account SID and auth token, JSON
  answers with a ``sid``, and Twilio's JSON error body with ``code`` and
  ``status``). Twilio's own Python library is pointed at it through the base
  URL of its API domain (``RECOVERY_TWILIO_API_BASE_URL``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import socket
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost): (cert, key) files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _Collect:
    def __init__(self, server: MailServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.server.arrived(envelope, tls=session.ssl is not None)
        return "250 Message accepted"


class MailServer:
    """aiosmtpd on a free port; ``messages`` holds what arrived, parsed."""

    def __init__(self, *, tls_files: tuple[Path, Path] | None = None):
        import ssl

        self.port = free_port()
        self.messages: list = []
        self.envelopes: list = []
        self.over_tls: list[bool] = []
        self.on_arrival = None
        kwargs = {}
        if tls_files:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, tls_files))
            kwargs = {"tls_context": context, "require_starttls": True}
        self.controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self._lock = threading.Lock()

    def arrived(self, envelope, *, tls: bool) -> None:
        if self.on_arrival:
            self.on_arrival(envelope)
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
            self.over_tls.append(tls)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class DroppingServer:
    """Accepts a connection and closes it at once: a connection dropped mid-way."""

    def __init__(self):
        self.port = free_port()
        self._socket = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._running = True

    def _serve(self):
        self._socket.settimeout(0.2)
        while self._running:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self._socket.close()


# --- Twilio --------------------------------------------------------------------------


class TwilioStandIn:
    """The Messages and Calls resources of Twilio's 2010-04-01 REST API, locally."""

    def __init__(self, account_sid: str, auth_token: str):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.requests: list[dict] = []
        self.failure: tuple[int, dict] | None = None  # (HTTP status, Twilio error body) to answer with
        self.delay = 0.0
        self.on_request = None
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                standin._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _reply(self, handler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {key: values[0] for key, values in parse_qs(handler.rfile.read(length).decode()).items()}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return self._reply(handler, 401, {"code": 20003, "message": "Authenticate", "status": 401})
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/"
        resource = handler.path[len(prefix) :] if handler.path.startswith(prefix) else ""
        if resource not in ("Messages.json", "Calls.json"):
            return self._reply(handler, 404, {"code": 20404, "message": "Not found", "status": 404})
        if self.on_request:
            self.on_request(form)
        if self.delay:
            time.sleep(self.delay)
        if self.failure:
            status, body = self.failure
            return self._reply(handler, status, body)
        sid = ("SM" if resource == "Messages.json" else "CA") + secrets.token_hex(16)
        with self._lock:
            self.requests.append({"resource": resource, "sid": sid, "at": time.perf_counter(), **form})
        self._reply(
            handler,
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "api_version": "2010-04-01",
                "date_created": dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
                "uri": f"{prefix}{resource[:-5]}/{sid}.json",
            },
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
