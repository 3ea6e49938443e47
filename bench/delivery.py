"""Benchmark: from the commit that queues a message to its sender's call.

    python bench/delivery.py                     # SQLite in a temporary folder
    python bench/delivery.py --postgresql postgresql://postgres@127.0.0.1:5432/rd_bench_delivery

200 codes (SMS and voice, alternating) and 200 e-mails are queued one unit
of work at a time, each committed like a request's transaction, with
immediate sending on. Senders are the real ones: ``SmtpSender`` talking to an
aiosmtpd server on this machine, and ``TwilioSender`` (Twilio's Python
library) talking to the local stand-in of Twilio's REST API
(tests/notify/servers.py), since Twilio cannot be reached from here.

Printed per kind: p50 / p95 / max milliseconds from the commit to the
sender's ``send`` being called, and to the message arriving at the server.
Target: p95 to the sender's call <= 1000 ms. On PostgreSQL the named
database is DROPPED AND RECREATED: use a name kept for this.
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the project's packages (recovery_app, tests) when run as a script

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from recovery_app import create_app, notify  # noqa: E402
from recovery_app.database import on_commit, unit  # noqa: E402
from recovery_app.extensions import db  # noqa: E402
from recovery_app.models import OutboxMessage  # noqa: E402
from recovery_app.models.base import utcnow  # noqa: E402
from recovery_app.notify import senders  # noqa: E402
from tests.notify.servers import MailServer, TwilioStandIn  # noqa: E402

ACCOUNT_SID, AUTH_TOKEN = "AC" + "b" * 32, "bench-token-" + "t" * 20


def fresh_app(url: str, tmp: Path, mail: MailServer, twilio: TwilioStandIn):
    import flask_migrate
    from sqlalchemy.engine import make_url

    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        server.dispose()
    app = create_app(
        {
            "RECOVERY_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-" + "x" * 40,
            "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"b" * 32).decode(),
            "RECOVERY_INSTANCE_DIR": str(tmp / "instance"),
            "RECOVERY_UPLOAD_DIR": str(tmp / "uploads"),
            "RECOVERY_SEND_AFTER_COMMIT": True,
            "RECOVERY_SMTP_HOST": "127.0.0.1",
            "RECOVERY_SMTP_PORT": mail.port,
            "RECOVERY_SMTP_SECURITY": "none",
            "RECOVERY_MAIL_FROM": "no-reply@recovery-desk.example",
            "RECOVERY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "RECOVERY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "RECOVERY_TWILIO_FROM": "+15005550006",
            "RECOVERY_TWILIO_API_BASE_URL": twilio.base_url,
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
    return app


class Clock:
    """Times keyed by outbox id: commit, the sender's call, arrival."""

    def __init__(self):
        self.lock = threading.Lock()
        self.committed, self.called, self.arrived = {}, {}, {}

    def stamp(self, table: dict, key) -> None:
        moment = time.perf_counter()
        with self.lock:
            table[key] = moment


def instrument(clock: Clock) -> None:
    """Note when each real sender is called (their work is left as it is)."""
    for cls in (senders.SmtpSender, senders.TwilioSender):
        original = cls.send

        def send(self, message, _original=original):
            clock.stamp(clock.called, message.id)
            return _original(self, message)

        cls.send = send


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run(url: str, count: int) -> dict:
    clock = Clock()
    instrument(clock)
    with (
        tempfile.TemporaryDirectory() as folder,
        MailServer() as mail,
        TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as twilio,
    ):
        phones: dict[str, int] = {}
        mail.on_arrival = lambda envelope: clock.stamp(
            clock.arrived, int(re.search(rb"outbox(\d+)\.", envelope.original_content).group(1))
        )
        twilio.on_request = lambda form: clock.stamp(clock.arrived, phones[form["To"]])
        app = fresh_app(url, Path(folder), mail, twilio)
        kinds: dict[int, str] = {}
        with app.app_context():
            for n in range(count):
                for kind in ("code", "email"):
                    with unit():
                        now = utcnow()
                        if kind == "code":
                            phone = f"+8190{n:08d}"
                            message = notify.queue_code("sms" if n % 2 == 0 else "voice", phone, f"{n:06d}", "ja", now)
                        else:
                            message = notify.queue_email(
                                f"seller{n}@example.test",
                                "scheduler/email/case_expired",
                                "ja",
                                now,
                                name="山田 花子",
                                reference=f"RC-{n:04d}-BNCH",
                                days=7,
                                base_url="https://desk.example",
                            )
                        db.session.flush()
                        message_id = message.id
                        if kind == "code":
                            phones[phone] = message_id
                        kinds[message_id] = kind
                        on_commit(lambda key=message_id: clock.stamp(clock.committed, key))
                time.sleep(0.005)  # requests arrive one after another, not all in one instant
            deadline = time.monotonic() + 60
            while len(clock.arrived) < len(kinds) and time.monotonic() < deadline:
                time.sleep(0.05)
            db.session.remove()
            statuses = dict(
                db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
            )
            unmasked = db.session.execute(
                select(func.count()).where(OutboxMessage.channel != "email", OutboxMessage.body.not_like("%••••••%"))
            ).scalar()
        with app.app_context():
            db.engine.dispose()
    figures = {}
    for kind in ("code", "email"):
        ids = [key for key, value in kinds.items() if value == kind]
        to_call = [(clock.called[i] - clock.committed[i]) * 1000 for i in ids if i in clock.called]
        to_arrival = [(clock.arrived[i] - clock.committed[i]) * 1000 for i in ids if i in clock.arrived]
        figures[kind] = {
            "n": len(ids),
            "called": len(to_call),
            "arrived": len(to_arrival),
            "call": to_call,
            "arrival": to_arrival,
        }
    return {"figures": figures, "statuses": statuses, "unmasked_codes": unmasked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgresql", metavar="URL", help="also run against this PostgreSQL database")
    parser.add_argument("--count", type=int, default=200, help="codes, and as many e-mails (default 200)")
    args = parser.parse_args()
    targets = []
    sqlite_folder = tempfile.TemporaryDirectory()
    targets.append(("SQLite", f"sqlite:///{Path(sqlite_folder.name) / 'bench.db'}"))
    if args.postgresql:
        targets.append(("PostgreSQL", args.postgresql.replace("postgresql://", "postgresql+psycopg://", 1)))
    for name, url in targets:
        result = run(url, args.count)
        print(f"{name}: outbox rows by status {result['statuses']}, codes left unmasked {result['unmasked_codes']}")
        for kind, figures in result["figures"].items():
            call, arrival = figures["call"], figures["arrival"]
            print(f"  {figures['n']} {kind}s, {figures['called']} handed to the sender, {figures['arrived']} arrived")
            if call:
                print(
                    f"    commit -> sender called: p50 {statistics.median(call):7.1f} ms  "
                    f"p95 {percentile(call, 0.95):7.1f} ms  max {max(call):7.1f} ms"
                )
            if arrival:
                print(
                    f"    commit -> server has it: p50 {statistics.median(arrival):7.1f} ms  "
                    f"p95 {percentile(arrival, 0.95):7.1f} ms  max {max(arrival):7.1f} ms"
                )
            if call:
                verdict = "meets" if percentile(call, 0.95) <= 1000 else "MISSES"
                print(f"    {verdict} the target p95 <= 1000 ms to the sender's call")
    sqlite_folder.cleanup()


if __name__ == "__main__":
    main()
