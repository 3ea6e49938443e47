"""After an approved recovery: the set-up page says the identity check
succeeded, and once 2SV is set up again the case page stops asking for it."""

from __future__ import annotations

from recovery_app.models.base import utcnow


def _approved(make, db):
    user = make.user(enrolled=False)  # no method left, must set 2SV up again
    case = make.case(user, status="approved")
    case.decided_at = case.closed_at = utcnow()
    db.session.flush()
    return user, case


def test_setup_page_after_an_approval_says_the_identity_check_succeeded(client, make, auth, db):
    user, case = _approved(make, db)
    response = auth.password(client, user)
    assert response.headers["Location"].endswith("/sign-in/setup")
    page = client.get("/sign-in/setup").get_data(as_text=True)
    assert 'id="identity-confirmed"' in page and "Your identity check succeeded." in page and case.reference in page


def test_setup_page_without_an_approval_says_nothing_of_it(client, make, auth, db):
    user = make.user(enrolled=False)
    auth.password(client, user)
    assert 'id="identity-confirmed"' not in client.get("/sign-in/setup").get_data(as_text=True)


def test_case_page_asks_to_set_up_again_only_until_it_is_done(client, make, auth, db):
    user, _case = _approved(make, db)
    auth.fast_password_step(client, user)
    before = client.get("/recovery/case").get_data(as_text=True)
    assert "set up 2-step verification again with a phone or app you have" in before
    assert 'id="set-up-again"' not in before
    make.add_totp(user)
    user.must_enroll_2sv = False
    db.session.flush()
    auth.fast_sign_in(client, user)
    after = client.get("/recovery/case").get_data(as_text=True)
    assert 'id="set-up-again"' in after
    assert "set up 2-step verification again with a phone or app you have" not in after
