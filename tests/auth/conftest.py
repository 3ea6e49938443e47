"""Auth fixtures: English browsers, roomy per-address limits, phone methods."""

from __future__ import annotations

import pytest


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
        method = TwoFactorMethod(
            user_id=user.id,
            kind=kind,
            is_primary=primary,
            phone_e164=e164,
            label="",
            created_at=utcnow(),
            confirmed_at=utcnow(),
        )
        db.session.add(method)
        user.must_enroll_2sv = False
        db.session.flush()
        return method

    return add
