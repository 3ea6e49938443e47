"""Fixtures for the staff pages: a signed-in manager, another browser of a user."""

from __future__ import annotations

import pytest

from tests.account.conftest import SIGN_IN_PATH

PHONE_UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


@pytest.fixture
def manager(client, auth, make):
    """A manager signed in on ``client``."""
    user = make.user("manager", locale="en", display_name="Manager M")
    auth.fast_sign_in(client, user)
    return user


@pytest.fixture
def manager_client(client, manager):
    client.manager = manager
    return client


def other_browser(app, auth, user, *, browser=PHONE_UA, address="198.51.100.23", at=None):
    other = app.test_client()
    row = auth.fast_sign_in(other, user, at=at)
    row.browser, row.address = browser, address
    return other, row


def alive(browser) -> bool:
    return not browser.get("/account/password").headers.get("Location", "").startswith(SIGN_IN_PATH)
