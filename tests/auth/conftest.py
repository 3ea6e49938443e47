"""Auth fixtures: going through the real sign-in forms."""

from __future__ import annotations

import pyotp
import pytest

from tests.conftest import TEST_PASSWORD


class Forms:
    """Signs a test client in by posting the real forms, as a browser would."""

    def password(self, client, user, *, password: str = TEST_PASSWORD, next: str = ""):
        return client.post("/sign-in", data={"email": user.email, "password": password, "next": next})

    def totp(self, user, at=None) -> str:
        totp = pyotp.TOTP(user._test_totp_seed)
        return totp.at(at) if at is not None else totp.now()

    def sign_in(self, client, user, *, remember: bool = False):
        """Password, then the current authenticator code: a full session."""
        self.password(client, user)
        data = {"code": self.totp(user)}
        if remember:
            data["remember_device"] = "y"
        response = client.post("/sign-in/code", data=data)
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


@pytest.fixture(autouse=True)
def english_browser(app):
    """Browsers in these tests ask for English (pages before sign-in follow
    Accept-Language); Japanese pages are checked where it matters."""
    base = app.test_client_class

    class EnglishClient(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")

    app.test_client_class = EnglishClient


@pytest.fixture
def forms():
    return Forms()


@pytest.fixture
def roomy_limits(app):
    """Lift the per-address limits for tests that post many times on purpose
    (the per-account counters are what they check)."""
    for name in ("RECOVERY_LIMIT_SIGN_IN", "RECOVERY_LIMIT_CODE_CHECK", "RECOVERY_LIMIT_CODE_SEND"):
        app.config[name] = "10000 per minute"
    return app


@pytest.fixture
def add_phone(db):
    """Give a user a confirmed phone method (SMS or voice)."""
    from recovery_app.models import TwoFactorMethod
    from recovery_app.models.base import utcnow

    def add(user, e164: str = "+819012345678", *, kind: str = "sms", primary: bool = True):
        if primary:
            for method in db.session.query(TwoFactorMethod).filter_by(user_id=user.id):
                method.is_primary = False
        method = TwoFactorMethod(user_id=user.id, kind=kind, is_primary=primary, phone_e164=e164, label="",
                                 created_at=utcnow(), confirmed_at=utcnow())
        db.session.add(method)
        user.must_enroll_2sv = False
        db.session.flush()
        return method

    return add
