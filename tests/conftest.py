"""The fixture stack: a real database per backend, each test in a transaction
that is rolled back, and a client that sends CSRF tokens like a browser.

Every test that uses ``app`` runs on SQLite, and on PostgreSQL too when
``RECOVERY_TEST_DATABASE_URL`` is set. In CI (``CI=true``) a missing or
unreachable PostgreSQL fails the run instead of being skipped.

Elsewhere: tests/helpers.py (test password, clock, outbox readers),
tests/factories.py (``make``: people, cases, documents, files) and
tests/signin.py (``auth``: the one way to sign a client in).
"""

from __future__ import annotations

import os

import pytest
from flask import g, request_started
from sqlalchemy import create_engine, text
from sqlalchemy.orm import scoped_session, sessionmaker

from recovery_app import create_app, database, demo
from recovery_app.extensions import db as _db
from recovery_app.extensions import limiter

from .factories import Factory
from .helpers import FIXED_NOW, CsrfClient, base_config, drawn_once, reset_schema, sqlalchemy_url
from .signin import SignIn

PG_URL = os.environ.get("RECOVERY_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_sessionstart(session):
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true but RECOVERY_TEST_DATABASE_URL is not set: PostgreSQL tests cannot be skipped")
    if PG_URL:
        try:
            engine = create_engine(sqlalchemy_url(PG_URL))
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
            raise pytest.UsageError(f"PostgreSQL at RECOVERY_TEST_DATABASE_URL is unreachable: {exc}") from None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"] if PG_URL else ["sqlite"])
def database_url(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"db-{request.param}")
    url = f"sqlite:///{tmp / 'test.db'}" if request.param == "sqlite" else sqlalchemy_url(PG_URL)
    reset_schema(url, tmp)
    return url


@pytest.fixture(scope="session", autouse=True)
def _demo_photos_drawn_once():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "document_image", drawn_once(demo.document_image))
        yield


@pytest.fixture
def backend(database_url) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def _as_a_new_request(sender, **extra):
    """Each request starts with an empty ``g`` (the ``app`` fixture keeps one
    application context open, and Flask would reuse it), and finds committed
    what the test set up before it (a request that rolls back undoes only itself)."""
    g.__dict__.clear()
    _db.session.commit()


@pytest.fixture(scope="session")
def _shared_app(database_url, tmp_path_factory):
    """One application per database for the whole run (building one costs more than most tests)."""
    application = create_app(base_config(database_url, tmp_path_factory.mktemp("app")))
    application.test_client_class = CsrfClient
    request_started.connect(_as_a_new_request, application)
    yield application
    with application.app_context():
        _db.engine.dispose()


@pytest.fixture
def app(_shared_app, tmp_path):
    """The app bound to one connection whose transaction is rolled back after
    the test; settings, rate-limit counters and the client class are put back."""
    application = _shared_app
    saved_config, saved_client_class = dict(application.config), application.test_client_class
    application.config.update(
        RECOVERY_INSTANCE_DIR=str(tmp_path / "instance"), RECOVERY_UPLOAD_DIR=str(tmp_path / "uploads")
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
    """An app whose commits are real (threads, several connections, a live server); emptied afterwards."""
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


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def now():
    return FIXED_NOW


@pytest.fixture
def make(app):
    return Factory(app)


@pytest.fixture
def add_phone(make):
    """add_phone(user, e164=..., kind="sms", primary=True): a confirmed phone method."""
    return make.add_phone


@pytest.fixture
def auth(app):
    return SignIn(app)
