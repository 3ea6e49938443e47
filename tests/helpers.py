"""What tests share besides fixtures: the test password, the fixed clock, a
client that posts like a browser, the outbox readers, how a test database
is made, and units run at once."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, event, select, text

from recovery_app import create_app
from recovery_app.database import unit
from recovery_app.extensions import db

TEST_PASSWORD = "correct horse battery staple 42"
FIXED_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def later(moment: datetime, **delta) -> datetime:
    return moment + timedelta(**delta)


def sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def base_config(database_url: str, tmp_path) -> dict:
    return {
        "RECOVERY_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-" + "x" * 40,
        "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "RECOVERY_INSTANCE_DIR": str(tmp_path / "instance"),
        "RECOVERY_UPLOAD_DIR": str(tmp_path / "uploads"),
        "RATELIMIT_STORAGE_URI": "memory://",
        "SERVER_NAME": None,
    }


def reset_schema(database_url: str, tmp_path) -> None:
    """Drop everything and run every migration from the start."""
    import flask_migrate

    engine = create_engine(database_url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    app = create_app(base_config(database_url, tmp_path))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


class CsrfClient(FlaskClient):
    """Posts like a browser would: with the CSRF token the page would carry,
    unless the test says ``csrf=False`` (or gives its own ``csrf_token``)."""

    def csrf_token(self) -> str:
        with self.session_transaction() as sess:
            if "csrf_token" not in sess:
                sess["csrf_token"] = hashlib.sha1(os.urandom(64)).hexdigest()
            raw = sess["csrf_token"]
        config = self.application.config
        secret = config.get("WTF_CSRF_SECRET_KEY") or config["SECRET_KEY"]
        return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)

    def post(self, *args, csrf: bool = True, **kwargs):
        data = kwargs.get("data")
        if csrf and (data is None or isinstance(data, dict)) and "json" not in kwargs:
            data = dict(data or {})
            data.setdefault("csrf_token", self.csrf_token())
            kwargs["data"] = data
        return super().post(*args, **kwargs)


def outbox_messages(channel: str | None = None, to: str | None = None):
    """Messages queued so far, oldest first (tests read codes and notices here).

    An e-mail is written by its sender after the commit; one not sent yet gets
    the text it will be sent with (on the loaded object only, the row is left
    as it is)."""
    from sqlalchemy.orm.attributes import set_committed_value

    from recovery_app.models import OutboxMessage
    from recovery_app.notify.services import text_of

    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if to:
        query = query.where(OutboxMessage.to == to)
    messages = db.session.execute(query).scalars().all()
    for message in messages:
        if message.channel == "email" and not message.body:
            subject, body = text_of(message)
            set_committed_value(message, "subject", subject)
            set_committed_value(message, "body", body)
    return messages


def queued_notice(to: str, now: datetime, *, name: str = "L", reference: str = "RC-AAAA-BBBB"):
    """A case-expired e-mail queued for ``to`` (English), as its outbox row:
    the message the sending and retry tests put through the outbox."""
    from recovery_app import notify
    from recovery_app.models import OutboxMessage

    message_id = notify.queue_email(
        to, "scheduler/email/case_expired", "en", now, name=name, reference=reference, days=7, base_url="http://x"
    )
    return db.session.get(OutboxMessage, message_id)


def queued_code(to: str, code: str, now: datetime, *, locale: str = "en", channel: str = "sms"):
    """A one-time code queued for the phone ``to``, as its outbox row."""
    from recovery_app import notify
    from recovery_app.models import OutboxMessage

    return db.session.get(OutboxMessage, notify.queue_code(channel, to, code, locale, now))


def last_code(to: str) -> str:
    """The six-digit code in the newest SMS or voice message to ``to``."""
    for message in reversed(outbox_messages(to=to)):
        if message.channel in ("sms", "voice"):
            digits = re.sub(r"(\d)[ ,、]{1,2}(?=\d)", r"\1", message.body)  # a call reads "1, 2, 3…"
            found = re.search(r"(?<!\d)\d{6}(?!\d)", digits)
            if found:
                return found.group(0)
    raise AssertionError(f"no code was sent to {to}")


def count_statements(call) -> int:
    """How many SQL statements ``call()`` ran (see ``statements_of``)."""
    return len(statements_of(call))


def statements_of(call) -> list[str]:
    """The SQL statements ``call()`` ran, as a real request would: nothing
    loaded before, and the SAVEPOINTs of the test's own transaction left out."""
    seen: list[str] = []

    def listener(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            seen.append(statement)

    db.session.flush()
    db.session.expire_all()
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return seen


def drawn_once(draw):
    """``demo.document_image`` that draws each photo once per test run.

    A demo photo is a function of its arguments and of the demo's seeded
    generator, which it also advances; so the same seed on the second backend
    (or in a second test) asks for the same photos in the same order. The
    photo and the generator's state after it are kept, and a repeated call
    gets both back, leaving the generator exactly where drawing would have.
    Drawing (perspective, light, noise, JPEG) is most of a demo's cost."""
    made: dict = {}

    def document_image(document_type, side, romanised_name, rng, flaw=None):
        key = (document_type, side, romanised_name, flaw, rng.getstate())
        if key not in made:
            result = draw(document_type, side, romanised_name, rng, flaw)
            made[key] = (result, rng.getstate())
        result, state = made[key]
        rng.setstate(state)
        return result

    return document_image


def units_at_once(app, backend: str, steps) -> list:
    """Run each ``(read, act)`` pair in its own thread and unit, with real
    commits: ``read`` loads what the request would have loaded and returns
    ``act``'s arguments; ``act`` makes the change. On PostgreSQL every unit
    has read before any acts (a barrier); SQLite runs one writer at a time
    (the second waits at BEGIN IMMEDIATE), so there is nothing to line up
    there, and waiting for each other would only deadlock. Returns what each
    ``act`` returned or raised, in order."""
    all_read = threading.Barrier(len(steps), timeout=30) if backend == "postgresql" else None
    outcomes: list = [None] * len(steps)

    def run(n, read, act):
        try:
            with app.app_context():
                try:
                    with unit():
                        loaded = read()
                        if all_read is not None:
                            all_read.wait()
                        outcomes[n] = act(*loaded)
                finally:
                    db.session.remove()
        except Exception as exc:  # the main thread looks at it
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(n, *pair)) for n, pair in enumerate(steps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes
