"""No user enumeration through sign-in (ASVS 6.3.8): a known address with a
wrong password and an unknown address get the same page, the same status and
take as long. Forgot-password and invitations: tests/account/test_timing.py.

Samples alternate between the two kinds; medians are compared with a wide
margin, because what this guards against is a different amount of work (an
argon2 hash done for one kind only), not scheduler noise."""

from __future__ import annotations

import re

from tests.account.test_timing import MARGIN, _median_pair


def _page_text(response) -> str:
    # the CSRF token and the e-mail typed back differ by design; everything else must not
    text = re.sub(r'value="[^"]*"', 'value=""', response.get_data(as_text=True))
    return text


def test_sign_in_answers_the_same_for_known_and_unknown_addresses(app, client, make, roomy_limits):
    # ASVS 6.3.8: message and status code
    user = make.user(email="known.person@example.test")
    known = client.post("/sign-in", data={"email": user.email, "password": "not the password 123"})
    unknown = client.post("/sign-in", data={"email": "unknown.person@example.test", "password": "not the password 123"})
    assert known.status_code == unknown.status_code == 200
    assert _page_text(known) == _page_text(unknown)


def test_sign_in_takes_as_long_for_unknown_addresses(app, client, make, roomy_limits):
    # ASVS 6.3.8: timing
    user = make.user()
    known, unknown = _median_pair(
        lambda: client.post("/sign-in", data={"email": user.email, "password": "not the password 123"}),
        lambda: client.post("/sign-in", data={"email": "nobody.here@example.test", "password": "not the password 123"}),
    )
    assert known / MARGIN < unknown < known * MARGIN, f"known {known * 1000:.2f} ms, unknown {unknown * 1000:.2f} ms"


def test_a_disabled_user_is_refused_like_an_unknown_address(app, client, make, now, roomy_limits):
    user = make.user(email="gone.person@example.test")
    user.disabled_at = now
    refused = client.post("/sign-in", data={"email": user.email, "password": "correct horse battery staple 42"})
    unknown = client.post("/sign-in", data={"email": "unknown.person@example.test", "password": "x" * 20})
    assert refused.status_code == unknown.status_code == 200
    assert _page_text(refused) == _page_text(unknown)
