"""Auth fixtures: English browsers and roomy per-address limits."""

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
