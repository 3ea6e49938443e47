"""After a sign-in with a recovery code: how many are left, a warning at three
or fewer, new codes offered at once, and a way to print them."""

from __future__ import annotations

import pytest

from recovery_app.auth import twofactor
from recovery_app.models.base import utcnow


def _sign_in_with_recovery_code(client, auth, user, code):
    auth.password(client, user)
    client.post("/sign-in/other-ways", data={"method_id": "recovery", "channel": ""})
    return client.post("/sign-in/code", data={"code": code})


def _use_codes(user, codes, how_many):
    for code in codes[:how_many]:
        assert twofactor.use_recovery_code(user, code, utcnow())


def test_recovery_code_sign_in_shows_the_codes_left_first(client, make, auth, db):
    user = make.user()
    codes = twofactor.generate_recovery_codes(user, utcnow())
    response = _sign_in_with_recovery_code(client, auth, user, codes[0])
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/settings/security/codes-left?next=/")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You have 9 recovery codes left." in page
    assert 'id="few-codes"' not in page and 'id="new-codes"' in page and 'id="continue"' in page


@pytest.mark.parametrize(
    ("used_before", "left", "words"),
    [
        (6, 3, "You have 3 recovery codes left."),
        (8, 1, "You have 1 recovery code left."),
        (9, 0, "You have no recovery codes left."),
    ],
)
def test_three_or_fewer_codes_left_are_warned_about(client, make, auth, db, used_before, left, words):
    user = make.user()
    codes = twofactor.generate_recovery_codes(user, utcnow())
    _use_codes(user, codes, used_before)
    response = _sign_in_with_recovery_code(client, auth, user, codes[used_before])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert twofactor.remaining_recovery_codes(user) == left
    assert 'id="few-codes"' in page and words in page


def test_new_codes_come_without_asking_for_another_code(client, make, auth, db):
    # ASVS 7.5.1: the recovery code just passed is the fresh second factor.
    user = make.user()
    codes = twofactor.generate_recovery_codes(user, utcnow())
    _sign_in_with_recovery_code(client, auth, user, codes[0])
    response = client.post("/settings/security/recovery-codes")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="recovery-codes"' in page and 'id="print-codes"' in page
    assert twofactor.remaining_recovery_codes(user) == 10
    assert not any(twofactor.use_recovery_code(user, old, utcnow()) for old in codes[1:3])


def test_other_sign_ins_do_not_stop_at_the_codes_page(client, make, auth):
    user = make.user()
    twofactor.generate_recovery_codes(user, utcnow())
    response = auth.sign_in(client, user)
    assert "codes-left" not in response.headers["Location"]


def test_codes_left_page_needs_a_session(client):
    assert client.get("/settings/security/codes-left").status_code == 302
