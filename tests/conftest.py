"""The fixture stack: a real database per backend, each test in a transaction
that is rolled back, a test client that sends CSRF tokens like a browser, and
factories for the people and things tests need.

Every test that uses ``app`` runs on SQLite, and on PostgreSQL too when
``RECOVERY_TEST_DATABASE_URL`` is set. In CI (``CI=true``) a missing or
unreachable PostgreSQL fails the run instead of being skipped.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from flask import g, request_started
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, text
from sqlalchemy.orm import scoped_session, sessionmaker

from recovery_app import create_app, database
from recovery_app.extensions import db as _db
from recovery_app.extensions import limiter

PG_URL = os.environ.get("RECOVERY_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_PASSWORD = "correct horse battery staple 42"
FIXED_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def pytest_sessionstart(session):
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true but RECOVERY_TEST_DATABASE_URL is not set: PostgreSQL tests cannot be skipped in CI")
    if PG_URL:
        try:
            engine = create_engine(_sqlalchemy_url(PG_URL))
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
            raise pytest.UsageError(f"PostgreSQL at RECOVERY_TEST_DATABASE_URL is unreachable: {exc}") from None


def _sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
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
        _db.engine.dispose()


@pytest.fixture(scope="session", params=_backends())
def database_url(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"db-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'test.db'}"
    else:
        url = _sqlalchemy_url(PG_URL)
    reset_schema(url, tmp)
    return url


@pytest.fixture
def backend(database_url) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


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


def _forget_previous_request(sender, **extra):
    """Each request starts with an empty ``g``, as under a real server.

    The ``app`` fixture keeps one application context open for the whole test
    and Flask reuses it for every test-client request, so without this ``g``
    (where Flask-Login caches the user and Flask-Babel the locale) would carry
    one request's user and language into the next client's request.

    What the test itself changed before the request is flushed first, as a
    test's own setup: under a real server the request would find it stored."""
    g.__dict__.clear()
    _db.session.flush()


@pytest.fixture(scope="session")
def _shared_app(database_url, tmp_path_factory):
    """One application per database for the whole run: building an app (URL
    rules, templates) costs more than most tests. ``app`` resets its state."""
    application = create_app(base_config(database_url, tmp_path_factory.mktemp("app")))
    application.test_client_class = CsrfClient
    request_started.connect(_forget_previous_request, application)
    yield application
    with application.app_context():
        _db.engine.dispose()


@pytest.fixture
def app(_shared_app, tmp_path):
    """The app bound to one connection whose transaction is rolled back after
    the test; settings, rate-limit counters and the test client class are put
    back as they were."""
    application = _shared_app
    saved_config = dict(application.config)
    saved_client_class = application.test_client_class
    application.config.update(
        RECOVERY_INSTANCE_DIR=str(tmp_path / "instance"),
        RECOVERY_UPLOAD_DIR=str(tmp_path / "uploads"),
    )
    limiter.reset()
    with application.app_context():
        connection = _db.engine.connect()
        with database.as_reader():  # the test's own transaction begins like a reader's
            transaction = connection.begin()
        original = _db.session
        _db.session = scoped_session(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
        try:
            yield application
        finally:
            _db.session.remove()
            _db.session = original
            transaction.rollback()
            connection.close()
            application.config.clear()
            application.config.update(saved_config)
            application.test_client_class = saved_client_class


@pytest.fixture
def live_app(database_url, tmp_path):
    """An app whose commits are real (threads, several connections, a live server).
    Every table is emptied afterwards."""
    application = create_app(base_config(database_url, tmp_path))
    application.test_client_class = CsrfClient
    try:
        yield application
    finally:
        with application.app_context():
            _db.session.remove()
            with _db.engine.begin() as connection:
                for table in reversed(_db.metadata.sorted_tables):
                    connection.execute(table.delete())
            _db.engine.dispose()


@pytest.fixture
def db(app):
    return _db


_BOOKKEEPING = ("SAVEPOINT", "RELEASE", "ROLLBACK TO")


@pytest.fixture
def count_statements(app):
    """``count_statements(call)``: how many SQL statements ``call()`` ran, leaving
    out the SAVEPOINTs of the test's own transaction (a real request has none).
    The session is expired first, as a real request starts with nothing loaded."""
    from sqlalchemy import event

    def count(call) -> int:
        seen = []

        def listener(_conn, _cursor, statement, *_args):
            if not statement.lstrip().upper().startswith(_BOOKKEEPING):
                seen.append(statement)

        _db.session.flush()
        _db.session.expire_all()
        event.listen(_db.engine, "before_cursor_execute", listener)
        try:
            call()
        finally:
            event.remove(_db.engine, "before_cursor_execute", listener)
        return len(seen)

    return count


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def now():
    return FIXED_NOW


# --- factories -----------------------------------------------------------------

class Factory:
    def __init__(self, app):
        self.app = app
        self.counter = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def account(self, name: str | None = None):
        from recovery_app.auth.users import get_or_create_account
        from recovery_app.models.base import utcnow

        return get_or_create_account(name or f"Shop {self._next()} 株式会社", utcnow())

    def user(self, role: str = "seller_owner", *, email: str | None = None, account=None, enrolled: bool = True,
             locale: str = "ja", password: str = TEST_PASSWORD, display_name: str = "", created_at=None):
        """A user; ``enrolled`` users have an authenticator app (see ``totp_for``)."""
        from recovery_app.auth.users import create_user
        from recovery_app.models.base import utcnow

        n = self._next()
        if role in ("seller_owner", "seller_user") and account is None:
            account = self.account()
        user = create_user(
            email=email or f"{role.replace('_', '-')}{n}@example.test",
            password=password,
            role=role,
            account=account,
            display_name=display_name or f"User {n}",
            romanised_name=display_name or f"User {n}",
            locale=locale,
            now=created_at or utcnow(),
            check_password=False,
        )
        if enrolled:
            self.add_totp(user)
            user.must_enroll_2sv = False
        _db.session.flush()
        return user

    def add_totp(self, user, *, primary: bool = True):
        """Give ``user`` a confirmed authenticator app; its seed is kept on the user for tests."""
        import pyotp

        from recovery_app import vault
        from recovery_app.models import TwoFactorMethod
        from recovery_app.models.base import utcnow

        seed = pyotp.random_base32()
        blob, key_id = vault.encrypt(seed.encode(), f"totp:{user.id}".encode())
        method = TwoFactorMethod(user_id=user.id, kind="totp", is_primary=primary, secret_encrypted=blob,
                                 key_id=key_id, label="Authenticator", created_at=utcnow(), confirmed_at=utcnow())
        _db.session.add(method)
        _db.session.flush()
        user._test_totp_seed = seed
        return method


    def case(self, user=None, *, document_type: str = "passport", submitted_at=None, status: str = "submitted"):
        """A submitted case (no document files) through the lifecycle's own constructor."""
        from recovery_app import lifecycle
        from recovery_app.models.base import utcnow

        user = user or self.user(enrolled=False)
        case = lifecycle.new_case(user, document_type, now=submitted_at or utcnow(), address="203.0.113.7",
                                  browser="Mozilla/5.0 (iPhone) Safari/604.1")
        if status != "submitted":
            case.status = status
        _db.session.flush()
        return case


@pytest.fixture
def make(app):
    return Factory(app)


class Auth:
    """Puts a test client into the two sign-in states, the way the sign-in
    pages do it (same session keys, a real ``user_sessions`` row)."""

    def __init__(self, app):
        self.app = app

    def password_step(self, client, user, *, at: datetime | None = None):
        from recovery_app.auth.sessions import PENDING_KEY, token_hash
        from recovery_app.models import PasswordStep
        from recovery_app.models.base import utcnow

        moment = at or utcnow()
        token = secrets.token_urlsafe(32)
        _db.session.add(PasswordStep(user_id=user.id, token_hash=token_hash(token), created_at=moment,
                                     address="127.0.0.1", browser="pytest"))
        _db.session.flush()
        with client.session_transaction() as sess:
            sess.clear()
            sess[PENDING_KEY] = {"uid": user.id, "epoch": user.session_epoch, "at": moment.isoformat(), "token": token}

    def sign_in(self, client, user, *, at: datetime | None = None):
        from recovery_app.auth.sessions import SID_KEY, token_hash
        from recovery_app.models import UserSession
        from recovery_app.models.base import utcnow

        moment = at or utcnow()
        token = secrets.token_urlsafe(32)
        row = UserSession(user_id=user.id, token_hash=token_hash(token), created_at=moment, last_seen_at=moment,
                          address="127.0.0.1", browser="pytest")
        _db.session.add(row)
        _db.session.flush()
        with client.session_transaction() as sess:
            sess.clear()
            sess[SID_KEY] = token
            sess["_user_id"] = user.get_id()
            sess["_fresh"] = True
        return row


    def fresh_code(self, client, *, at: datetime | None = None):
        """As if the signed-in user had just passed the confirm-with-a-code page."""
        from recovery_app.auth.sessions import FRESH_KEY
        from recovery_app.models.base import utcnow

        with client.session_transaction() as sess:
            sess[FRESH_KEY] = (at or utcnow()).isoformat()


@pytest.fixture
def auth(app):
    return Auth(app)


def outbox_messages(channel: str | None = None, to: str | None = None):
    """Messages queued so far, oldest first (tests read codes and notices here)."""
    from sqlalchemy import select

    from recovery_app.models import OutboxMessage

    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if to:
        query = query.where(OutboxMessage.to == to)
    return _db.session.execute(query).scalars().all()


def last_code(to: str) -> str:
    """The six-digit code in the newest SMS or voice message to ``to``."""
    for message in reversed(outbox_messages(to=to)):
        if message.channel in ("sms", "voice"):
            digits = re.sub(r"(\d) (?=\d)", r"\1", message.body)
            found = re.search(r"(?<!\d)\d{6}(?!\d)", digits)
            if found:
                return found.group(0)
    raise AssertionError(f"no code was sent to {to}")


def later(moment: datetime, **delta) -> datetime:
    return moment + timedelta(**delta)
